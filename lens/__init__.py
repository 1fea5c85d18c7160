"""LENS core library: data, features, the SCE -> FBE -> NSD model, metrics, baselines and the
anomaly and stock-out algorithms. Plain Python and TensorFlow: nothing here imports Kafka or gRPC
(``lens.cli`` is the composition root and reaches into ``services``/``serving`` lazily)."""

from lens.errors import ConfigError, DataError, LensError, RuntimeDependencyError
from lens.settings import LensSettings, load_settings

__all__ = [
    "ConfigError",
    "DataError",
    "LensError",
    "LensSettings",
    "RuntimeDependencyError",
    "load_settings",
]
