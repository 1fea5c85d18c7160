"""FunnelServiceConfig: everything the funnel-state worker needs, built once at the entry point.

``FunnelServiceConfig.from_settings(settings, **flags)`` takes the shared ``LensSettings`` (Kafka
address, run dir, model server address) and the ``lens worker funnel`` flags; fields that are not
in ``LensSettings`` yet (web port, inactivity timeout, sweep interval, model name) have their
defaults here and come from flags.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lens.anomaly import AnomalyConfig
from lens.errors import ConfigError
from lens.settings import LensSettings
from lens.stockout import StockoutConfig
from lens.stream import SessionizerConfig, ValidationConfig

__all__ = ["FunnelServiceConfig"]


@dataclass(frozen=True)
class FunnelServiceConfig:
    """Attributes:
    bootstrap_servers: Kafka cluster (``LensSettings.bootstrap_servers``).
    store_dir: where the worker's RocksDB table files live (``<run_dir>/funnel``).
    app_id: Faust app id = consumer group id and prefix of the internal topics.
    web_port: port of the worker's web server (/metrics, /funnel/...), bound to ``web_bind``.
    web_bind: address the web server binds to (127.0.0.1 locally).
    sweep_interval_s: how often (processing time) the idle-basket sweep runs per partition.
    quiet_after_s: a partition that got no event for this long (processing time) has its
      event-time watermark advanced by processing time (see ``services.funnel.processor``).
    model_server: host:port of the TF Serving gRPC API; None = no predictions.
    model_name: model name in the model server's config.
    model_version_label: version label to ask for ("" = latest).
    predict_timeout_s: deadline of one prediction call (retries included).
    predict_retry_s: wait before a failed prediction is retried (doubles up to 16x).
    max_in_flight: prediction calls in flight per worker.
    service_name: written into dead letters' ``service``.
    cluster_model_path: a ``lens.anomaly.ClusterModel`` file (fk of Algorithm 1); None = every
      customer in one cluster (-1).
    """

    bootstrap_servers: str
    store_dir: Path
    app_id: str = "lens-funnel"
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    sweep_interval_s: float = 5.0
    quiet_after_s: float = 10.0
    model_server: str | None = "127.0.0.1:8500"
    model_name: str = "lens"
    model_version_label: str = ""
    predict_timeout_s: float = 2.0
    predict_retry_s: float = 5.0
    max_in_flight: int = 256
    service_name: str = "funnel-state"
    cluster_model_path: Path | None = None
    sessionizer: SessionizerConfig = field(default_factory=SessionizerConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    stockout: StockoutConfig = field(default_factory=StockoutConfig)

    def __post_init__(self) -> None:
        if not 0 < self.web_port < 65536:
            raise ConfigError(f"web port {self.web_port} is not a TCP port; pick 1..65535")
        if self.sweep_interval_s <= 0 or self.quiet_after_s < 0:
            raise ConfigError("sweep interval must be > 0 and quiet-after >= 0 seconds")
        if self.predict_timeout_s <= 0 or self.predict_retry_s <= 0 or self.max_in_flight < 1:
            raise ConfigError("prediction timeout and retry must be > 0, max in flight >= 1")

    @property
    def broker_url(self) -> str:
        """Faust's broker URL(s) for ``bootstrap_servers`` (comma-separated hosts)."""
        return ";".join(f"kafka://{host.strip()}" for host in self.bootstrap_servers.split(","))

    @property
    def store_url(self) -> str:
        return f"rocksdb://{self.store_dir.resolve()}"

    @classmethod
    def from_settings(
        cls,
        settings: LensSettings,
        *,
        web_port: int | None = None,
        inactivity_timeout_s: float | None = None,
        sweep_interval_s: float | None = None,
        quiet_after_s: float | None = None,
        no_model: bool = False,
        model_name: str | None = None,
        anomaly_min_history: int | None = None,
        stockout_days: int | None = None,
        **overrides: Any,
    ) -> "FunnelServiceConfig":
        """Settings + flags (None = not given, keep the default)."""
        given: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers,
            "store_dir": Path(settings.run_dir) / "funnel",
            "model_server": None if no_model else settings.model_server,
        }
        for name, value in (
            ("web_port", web_port),
            ("sweep_interval_s", sweep_interval_s),
            ("quiet_after_s", quiet_after_s),
            ("model_name", model_name),
        ):
            if value is not None:
                given[name] = value
        if inactivity_timeout_s is not None:
            if inactivity_timeout_s <= 0:
                raise ConfigError("--inactivity-timeout must be > 0 seconds")
            given["sessionizer"] = SessionizerConfig(
                inactivity_timeout=dt.timedelta(seconds=inactivity_timeout_s)
            )
        if anomaly_min_history is not None:
            window = max(AnomalyConfig().window, anomaly_min_history)
            given["anomaly"] = AnomalyConfig(min_history=anomaly_min_history, window=window)
        if stockout_days is not None:
            given["stockout"] = StockoutConfig(n_days=stockout_days)
        given.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**given)
