"""The champion: the model a retrain starts from and must not fall behind.

It is the newest version under the model base path (what the server's ``latest`` policy serves),
found through that version's model card, which names its training run; ``--champion RUN_DIR``
names the run directly (needed once: for a version exported by ``lens train``, which writes no card).
"""

from dataclasses import dataclass
from pathlib import Path

from lens.errors import ConfigError
from lens.model.export import next_version
from lens.retrain.model_card import CARD_FILE, ModelCard

__all__ = ["Champion", "find_champion"]


@dataclass(frozen=True)
class Champion:
    run_dir: Path  # a `lens train --out` directory (lens.json + weights/)
    version: int | None  # its version under the model base path; None when never published


def find_champion(base: Path, run_dir: Path | None = None) -> Champion:
    """The champion under ``base`` (see the module docstring); ``run_dir`` overrides the card."""
    newest = next_version(base) - 1 or None
    if run_dir is not None:
        return Champion(Path(run_dir), newest)
    if newest is None:
        raise ConfigError(
            f"{base} has no model version yet: pass --champion RUN_DIR (a `lens train --out` "
            "directory) for the first retrain."
        )
    card = base / str(newest) / CARD_FILE
    if not card.is_file():
        raise ConfigError(
            f"{base / str(newest)} has no {CARD_FILE} (it was not published by lens retrain): "
            "pass --champion RUN_DIR, the `lens train --out` directory that version came from."
        )
    return Champion(Path(ModelCard.read(card).run_dir), newest)
