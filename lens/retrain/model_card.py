"""ModelCard: what a retrain decided and why, as JSON beside the version it published.

    <model base>/<version>/model_card.json   for a published challenger (TF Serving ignores it)
    <retrain run dir>/model_card.json        always, published or rejected

The card of the newest version names the training run it came from (``run_dir``): the next
``lens retrain`` warm-starts from it.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lens.errors import ConfigError

__all__ = ["CARD_FILE", "ModelCard"]

CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class ModelCard:
    """``challenger``/``champion``: metric name -> value on the same held-out baskets (None =
    NaN); ``data``: source, window and holdout sizes; ``vocabulary``: items known, new, carried."""

    model_name: str
    outcome: str  # published | rejected
    reason: str
    metric: str
    margin: float
    version: int | None  # the published version; None when rejected
    parent_version: int | None  # the champion's version; None when it was never published
    run_dir: str  # the challenger's training run (lens train --out layout)
    champion_run_dir: str
    created_at: str  # ISO-8601 UTC
    challenger: dict[str, float | None] = field(default_factory=dict)
    champion: dict[str, float | None] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    vocabulary: dict[str, int] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def write(self, directory: str | Path) -> Path:
        path = Path(directory) / CARD_FILE
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "ModelCard":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not a readable model card ({exc}).") from exc

