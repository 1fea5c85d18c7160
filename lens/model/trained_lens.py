"""TrainedLens: a fitted model with what it needs to read funnels (vocabularies, config), saved to and
loaded from a run directory:

    <dir>/lens.json        model config, item vocabulary, user index
    <dir>/weights/         TensorFlow checkpoint of the best weights
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lens.data.vocabulary import Vocabulary
from lens.errors import ConfigError
from lens.model.config import LensConfig
from lens.model.dataset import UserIndex

__all__ = ["TrainedLens"]

_META = "lens.json"
_WEIGHTS = "weights/best"


@dataclass
class TrainedLens:
    """A LensModel plus its item vocabulary and user index."""

    model: object  # LensModel (typed loosely so that importing this module needs no TensorFlow)
    config: LensConfig
    vocabulary: Vocabulary
    users: UserIndex

    @classmethod
    def create(
        cls,
        config: LensConfig,
        vocabulary: Vocabulary,
        users: UserIndex,
        item_embeddings: np.ndarray | None = None,
    ) -> "TrainedLens":
        """A new, built (randomly initialized or warm-started) model."""
        from lens.model.lens_model import LensModel

        model = LensModel(config, len(vocabulary), len(users), item_embeddings=item_embeddings)
        model.build_for()
        return cls(model=model, config=config, vocabulary=vocabulary, users=users)

    def save(self, directory: str | Path, weights: bool = True) -> Path:
        """Write metadata and (unless ``weights`` is False) the model's current weights under
        ``directory``."""
        import tensorflow as tf

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": self.config.to_dict(),
            "vocabulary": self.vocabulary.to_dict(),
            "users": list(self.users.customers),
        }
        (directory / _META).write_text(json.dumps(meta))
        if weights:
            tf.train.Checkpoint(model=self.model).write(str(directory / _WEIGHTS))
        return directory

    def save_weights_only(self, directory: str | Path) -> None:
        import tensorflow as tf

        tf.train.Checkpoint(model=self.model).write(str(Path(directory) / _WEIGHTS))

    @classmethod
    def load(cls, directory: str | Path) -> "TrainedLens":
        """Read a directory written by ``save`` (or by ``lens train --out``)."""
        import tensorflow as tf

        directory = Path(directory)
        if not (directory / _META).is_file():
            raise ConfigError(f"{directory}: no {_META}; pass the --out directory of `lens train`.")
        meta = json.loads((directory / _META).read_text())
        trained = cls.create(
            LensConfig.from_dict(meta["config"]),
            Vocabulary.from_dict(meta["vocabulary"]),
            UserIndex(meta["users"]),
        )
        tf.train.Checkpoint(model=trained.model).read(str(directory / _WEIGHTS)).expect_partial()
        return trained
