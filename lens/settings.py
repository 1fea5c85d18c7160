"""The one settings object of LENS.

Built once at the entry point (``lens`` CLI, a service's main, a test fixture) from, in
increasing priority: defaults, ``LENS_*`` environment variables, and explicit overrides
(command-line flags). Everything below the entry point receives it as an argument.
"""

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lens.errors import ConfigError

__all__ = ["LensSettings", "load_settings"]


class LensSettings(BaseSettings):
    """Typed, frozen configuration. Every field reads ``LENS_<FIELD NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="LENS_", frozen=True, extra="forbid")

    run_dir: Path = Field(
        Path(".run"), description="Where local runtime data and logs go (Kafka storage, pid files)."
    )
    kafka_bootstrap: str | None = Field(
        None,
        description="bootstrap.servers of an existing Kafka cluster. When set, LENS uses it "
        "and starts no local broker.",
    )
    kafka_host: str = Field("127.0.0.1", description="Address the local broker binds to.")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Local broker's client port.")
    kafka_controller_port: int = Field(
        9093, ge=1, le=65535, description="Local broker's KRaft controller port."
    )
    kafka_heap: str = Field("512m", description="JVM heap (-Xmx) of the local broker.")
    kafka_start_timeout_s: float = Field(
        90.0, gt=0, description="How long to wait for the local broker to answer an AdminClient."
    )
    model_server: str = Field(
        "127.0.0.1:8500",
        description="host:port of the model server's gRPC API (TensorFlow Serving or `lens serve`).",
    )

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka cluster every client talks to: the configured one, else the local broker."""
        return self.kafka_bootstrap or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None


def load_settings(**overrides: Any) -> LensSettings:
    """Settings from the environment, with ``overrides`` (flags; None = not given) on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return LensSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"invalid LENS settings ({problems}). Check the LENS_* environment variables and flags."
        ) from exc
