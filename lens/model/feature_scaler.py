"""FeatureScaler: raw session features -> standardized ones, inside the graph (so serving clients
send raw features, lens.data.features.FEATURE_NAMES order)."""

import keras
import numpy as np

from lens.data.features import FEATURE_NAMES

__all__ = ["LOG_FEATURES", "FeatureScaler"]

# Heavy-tailed features are compressed with sign(x) * log1p(|x|) before standardizing.
LOG_FEATURES = ("days_since_previous", "basket_size", "total_quantity", "total_amount")


class FeatureScaler(keras.layers.Layer):
    """[..., F] raw features -> [..., F] (log-compressed where heavy-tailed, then (x - mean) / std).

    ``adapt(matrix)`` sets mean and std (non-trainable weights, saved with the model)."""

    def __init__(self, num_features: int = len(FEATURE_NAMES), **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_features = num_features
        log_mask = np.array([name in LOG_FEATURES for name in FEATURE_NAMES], np.float32)
        self._log_mask = log_mask[:num_features]
        self.mean = self.add_weight(
            shape=(num_features,), initializer="zeros", trainable=False, name="mean"
        )
        self.std = self.add_weight(
            shape=(num_features,), initializer="ones", trainable=False, name="std"
        )

    def _compress(self, x):
        ops = keras.ops
        logged = ops.sign(x) * ops.log1p(ops.abs(x))
        return ops.where(self._log_mask > 0, logged, x)

    def adapt(self, matrix: np.ndarray) -> None:
        """matrix float32 [N, F]: raw features of the training sessions."""
        compressed = keras.ops.convert_to_numpy(self._compress(keras.ops.convert_to_tensor(matrix)))
        self.mean.assign(compressed.mean(axis=0))
        self.std.assign(np.maximum(compressed.std(axis=0), 1e-3))

    def call(self, x):
        return (self._compress(x) - self.mean) / self.std
