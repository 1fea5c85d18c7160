"""The one settings object of LENS.

Built once at the entry point (``lens`` CLI, a service's main, a test fixture) from, in
increasing priority: defaults, ``LENS_*`` environment variables, and explicit overrides
(command-line flags). Everything below the entry point receives it as an argument.
"""

import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="security.protocol of every Kafka client LENS builds."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user; required with SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password; required with SASL_PLAINTEXT or SASL_SSL; never logged."
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); "
        "unset = the system's CAs.",
    )
    kafka_host: str = Field("127.0.0.1", description="Address the local broker binds to.")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Local broker's client port.")
    kafka_controller_port: int = Field(
        9093, ge=1, le=65535, description="Local broker's KRaft controller port."
    )
    kafka_heap: str = Field("512m", description="JVM heap (-Xmx) of the local broker.")
    kafka_jvm_options: str = Field(
        "-XX:TieredStopAtLevel=1",
        description="More JVM options of the local broker and its storage-format tool, split "
        "like a shell's words (the heap is kafka_heap); the default compiles with C1 only: on a "
        "machine the broker shares with the workers, C2's compiling costs more CPU than its "
        "faster code saves (BENCHMARKS.md); empty = the JVM's defaults.",
    )
    kafka_start_timeout_s: float = Field(
        90.0, gt=0, description="How long to wait for the local broker to answer an AdminClient."
    )
    model_server: str = Field(
        "127.0.0.1:8500",
        description="host:port of the model server's gRPC API (TensorFlow Serving or `lens serve`).",
    )
    model_name: str = Field(
        "lens", min_length=1, description="Model name to ask the model server for (its config)."
    )
    model_version_label: str = Field(
        "", description="Version label to ask the model server for; empty = the latest version."
    )
    model_canary_label: str = Field(
        "canary", min_length=1,
        description="Version label of the canary model; see model_canary_share.",
    )
    model_canary_share: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Share of customers (0..1, fixed per customer by a hash of the id) whose "
        "predictions come from the canary label instead of model_version_label.",
    )
    model_canary_margin: float = Field(
        0.05, ge=0.0, le=1.0,
        description="The worker stops routing to the canary when its live hit rate is below the "
        "stable label's by more than this.",
    )
    model_canary_min_checks: int = Field(
        200, ge=1,
        description="Predictions checked against the next basket, per label, before the canary "
        "can be rolled back.",
    )
    predict_timeout_s: float = Field(
        2.0, gt=0, description="Deadline of one prediction call, retries included (seconds)."
    )
    predict_retry_s: float = Field(
        5.0,
        gt=0,
        description="Wait before a failed prediction is retried, doubling up to 16x (seconds).",
    )

    # -- funnel-state worker (`lens worker funnel`) ---------------------------------------------
    worker_web_port: int = Field(
        6066, ge=1, le=65535, description="Port of the worker's /metrics and views (127.0.0.1)."
    )
    funnel_app_id: str = Field(
        "lens-funnel",
        min_length=1,
        description="Faust app id of the funnel worker: consumer group and internal topic "
        "prefix; workers with the same id share the partitions.",
    )
    funnel_event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The worker's event loop: uvloop (libuv; less CPU per record, "
        "BENCHMARKS.md) or Python's own asyncio loop.",
    )
    funnel_inactivity_timeout_s: float = Field(
        3600.0, gt=0, description="Event time without a line after which a basket closes (seconds)."
    )
    funnel_sweep_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often idle baskets are swept and failed predictions retried (seconds).",
    )
    funnel_quiet_after_s: float = Field(
        10.0,
        ge=0,
        description="A partition quiet this long (processing time) advances its event-time "
        "watermark by processing time (seconds).",
    )
    cluster_model: Path | None = Field(
        None,
        description="Behaviour clusters (a lens.anomaly.ClusterModel file) for Algorithm 1; "
        "unset = one cluster for everyone.",
    )
    product_segments: Path | None = Field(
        None,
        description="Product segment map (`lens segments products`: its folder or its "
        "product_segment_map.json); stock-out alerts then carry the product's segment.",
    )
    anomaly_min_history: int = Field(
        30, ge=1, description="Sessions a behaviour cluster needs before it can alert."
    )
    anomaly_min_sessions: int = Field(
        4, ge=1, description="Sessions a customer's prediction must have seen before the next "
        "session is scored (Algorithm 1)."
    )
    anomaly_novelty_window: int = Field(
        4, ge=1, description="Latest sessions whose products Algorithm 1 compares with the "
        "customer's earlier ones (the novelty in the level)."
    )
    anomaly_established: int = Field(
        3, ge=1, description="Sessions a customer needs before the novelty window for a session "
        "to be scored (Algorithm 1)."
    )
    anomaly_catalog: Path | None = Field(
        None,
        description="Product catalog for Algorithm 1's need-level signals: a CSV with PROD_ID "
        "(or PRODUCT_ID) and PRODUCT_SUBCLASS, optionally DEPARTMENT (e.g. `lens data synth`'s "
        "products.csv, a Ta-Feng export); unset = product-level level only.",
    )
    anomaly_need_intervals: Path | None = Field(
        None,
        description="With a catalog: each category's typical interval between purchases in the "
        "population (a JSON file of `lens data need-intervals`), so that Algorithm 1 can tell "
        "when a need bought only twice is late; unset = each customer's own intervals only.",
    )
    anomaly_drop_weight: float = Field(
        0.3, ge=0, description="With a catalog: weight of the overdue needs (regular categories "
        "late, in units of the customer's own regularity) in the level (Algorithm 1)."
    )
    anomaly_new_weight: float = Field(
        0.5, ge=0, description="With a catalog: weight of the first purchases of categories the "
        "customer long went without in the level (Algorithm 1)."
    )
    anomaly_discovery_weight: float = Field(
        0.3, ge=0, description="With a catalog: weight of the burst of first-bought categories "
        "beyond the customer's own pace in the level (Algorithm 1)."
    )
    anomaly_department_weight: float = Field(
        0.1, ge=0, description="With a catalog that has a DEPARTMENT column: weight of the "
        "customer's purchases of the departments they started lately (2+ of their categories, "
        "none before) in the level (Algorithm 1)."
    )
    anomaly_threshold: float = Field(
        3.5, gt=0, description="dB (robust z of the level within the cluster) above which a "
        "session alerts."
    )
    stockout_days: int = Field(7, ge=1, description="Algorithm 2 (stock-out) horizon in days.")
    stockout_min_shortfall: float = Field(
        0.5, ge=0, description="Algorithm 2: a cell alerts when its predicted demand exceeds "
        "its resupply by more than this many units (its expected shortfall)."
    )
    alerts_group: str = Field(
        "lens-alert-subscriber", min_length=1, description="Consumer group of `lens alerts serve`."
    )
    alerts_metrics_host: str = Field(
        "127.0.0.1", description="Address of the alert subscriber's /metrics (0.0.0.0 in a container)."
    )
    alerts_metrics_port: int = Field(
        9102, ge=0, le=65535, description="Port of the alert subscriber's /metrics; 0 = none."
    )
    alerts_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret that signs webhook deliveries (HMAC-SHA256)."
    )
    history_store: Path | None = Field(
        None,
        description="SQLite file of the session history (`lens history sink`, `lens retrain`); "
        "unset = <run dir>/history/sessions.sqlite.",
    )

    @field_validator(
        "cluster_model", "product_segments", "kafka_ssl_cafile", "history_store",
        "anomaly_catalog", "anomaly_need_intervals", mode="before"
    )
    @classmethod
    def _empty_path_is_unset(cls, value: Any) -> Any:
        """A blank path variable (e.g. a compose file's ``LENS_CLUSTER_MODEL=""``) means no file,
        not ``.``."""
        return None if value == "" else value

    @field_validator("kafka_jvm_options")
    @classmethod
    def _jvm_options_split(cls, value: str) -> str:
        try:
            options = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split {value!r} into JVM options: {exc}") from exc
        # the broker's own -Xmx comes later on its command line and would win unseen
        if any(option.startswith("-Xmx") for option in options):
            raise ValueError("set the broker's heap with kafka_heap (LENS_KAFKA_HEAP), not here")
        return value

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> "LensSettings":
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username
            and self.kafka_sasl_password
            and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"kafka_security_protocol={self.kafka_security_protocol} needs "
                "LENS_KAFKA_SASL_USERNAME and LENS_KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka cluster every client talks to: the configured one, else the local broker."""
        return self.kafka_bootstrap or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def history_store_path(self) -> Path:
        """The session history file: the configured one, else one under the run dir."""
        return self.history_store or self.run_dir / "history" / "sessions.sqlite"


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
