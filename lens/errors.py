"""The LENS exception tree.

    LensError
    ├── ConfigError        settings or flags that cannot work together
    ├── DataError          an input file or record that cannot be read (says file, line, field)
    ├── TrainingDiverged   a training run whose loss or gradients stopped being finite numbers
    └── RuntimeDependencyError
                           an external program LENS starts (Java, Maven, Kafka) is missing or failed

Library errors are translated at the boundary (``raise X(...) from exc``) and every message
says what to do next.
"""

__all__ = ["ConfigError", "DataError", "LensError", "RuntimeDependencyError", "TrainingDiverged"]


class LensError(Exception):
    """Root of every error LENS raises on purpose."""


class ConfigError(LensError):
    """Settings or command-line flags that cannot work."""


class DataError(LensError):
    """An input file or record that cannot be read."""


class TrainingDiverged(LensError):
    """Training produced a non-finite loss or gradient (learning rate too high, bad data)."""


class RuntimeDependencyError(LensError):
    """An external program LENS needs is missing, failed to start or did not become ready."""
