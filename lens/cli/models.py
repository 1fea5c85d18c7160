"""Model resolution for ``lens eval`` and ``lens predict``: a model name -> a fresh Recommender.

The one place that knows where models come from. Today: the baselines registry. LENS models
(by name or saved-model directory) resolve here too once they exist.
"""

from typing import TYPE_CHECKING

from lens.errors import ConfigError

if TYPE_CHECKING:  # lens.baselines imports xgboost: keep it out of `lens --help`
    from lens.baselines.recommender import Recommender

__all__ = ["resolve_model"]


def resolve_model(name: str) -> "Recommender":
    """A new, unfitted model called ``name``; ConfigError listing the known names otherwise."""
    from lens.baselines import BASELINES

    try:
        factory = BASELINES[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; use one of {', '.join(sorted(BASELINES))}."
        ) from None
    return factory()
