"""Model resolution for ``lens eval`` and ``lens predict``: a model name -> a fresh Recommender.

The one place that knows where models come from: a baseline name (``lens.baselines``), a LENS
architecture name (``lens1000``, ``lens2000``, ...: trained inside ``fit``), or the directory of a
trained LENS run (``lens train --out DIR``: ``fit`` keeps it as it is).
"""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lens.errors import ConfigError

if TYPE_CHECKING:  # lens.baselines imports xgboost: keep it out of `lens --help`
    from lens.baselines.recommender import Recommender

__all__ = ["add_model_argument", "resolve_model"]


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """--model NAME, for the commands that hand it to ``resolve_model``."""
    parser.add_argument(
        "--model", required=True,
        help="trained run directory, LENS architecture or baseline name (e.g. personal-top)",
    )


def resolve_model(name: str) -> "Recommender":
    """A new model called ``name``; ConfigError listing the known names otherwise."""
    from lens.baselines import BASELINES
    from lens.model import CONFIGS, LensRecommender

    if Path(name).is_dir():
        return LensRecommender.load(name)
    if name in BASELINES:
        return BASELINES[name]()
    if name in CONFIGS:
        return LensRecommender(CONFIGS[name])
    raise ConfigError(
        f"unknown model {name!r}: use a trained LENS run directory (lens train --out DIR), "
        f"a LENS architecture ({', '.join(sorted(CONFIGS))}) or a baseline "
        f"({', '.join(sorted(BASELINES))})."
    )
