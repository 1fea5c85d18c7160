"""FunnelServiceConfig: the funnel-state worker's view of ``LensSettings``, built once at the entry point.

``FunnelServiceConfig.from_settings(settings, no_model=...)`` derives everything from the shared
``LensSettings`` (defaults, ``LENS_*`` variables, ``lens worker funnel`` flags): the Kafka address,
the table directory, the worker knobs and the algorithm configs. Only ``--no-model`` (a switch, not
a setting) and the fields LENS does not expose as settings (web bind address, in-flight limit,
batching and state cache sizes, service name, validation limits) are decided here.
"""

import datetime as dt
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from lens.anomaly import AnomalyConfig
from lens.errors import ConfigError
from lens.settings import LensSettings
from lens.stockout import StockoutConfig
from lens.stream import SessionizerConfig, ValidationConfig
from services.kafka.connection import KafkaConnection

__all__ = ["Canary", "FunnelServiceConfig"]


@dataclass(frozen=True)
class Canary:
    """Route ``share`` of the customers (0..1) to the model version labelled ``label``.

    A customer's side is fixed by a hash of their id (``in_canary``), so each customer always
    sees the same version and the two versions' live hit rates compare like with like. The
    worker stops routing to the canary when its hit rate falls below the stable label's by more
    than ``margin``, once both have ``min_checks`` predictions checked (``services.funnel.canary``).
    """

    label: str = "canary"
    share: float = 0.0
    margin: float = 0.05
    min_checks: int = 200

    def in_canary(self, customer_id: str) -> bool:
        return zlib.crc32(customer_id.encode()) < self.share * 2**32


@dataclass(frozen=True)
class FunnelServiceConfig:
    """Attributes (``LensSettings`` field in brackets; those are validated there):
    kafka: the Kafka cluster and its client security [``bootstrap_servers``,
      ``kafka_security_protocol``, ``kafka_sasl_*``, ``kafka_ssl_cafile``].
    store_dir: where the worker's RocksDB table files live [``<run_dir>/funnel``].
    app_id: Faust app id = consumer group id and prefix of the internal topics [``funnel_app_id``].
    web_port: port of the worker's web server (/metrics, /funnel/...), bound to ``web_bind``
      [``worker_web_port``].
    sweep_interval_s: how often (processing time) the idle-basket sweep runs per partition
      [``funnel_sweep_interval_s``].
    quiet_after_s: a partition that got no event for this long (processing time) has its
      event-time watermark advanced by processing time (see ``services.funnel.processor``)
      [``funnel_quiet_after_s``].
    model_server: host:port of the TF Serving gRPC API; None = no predictions (``--no-model``)
      [``model_server``].
    model_name: model name in the model server's config [``model_name``].
    model_version_label: version label to ask for ("" = latest) [``model_version_label``].
    canary: the share of customers asking for the canary label instead, and when to roll it back
      [``model_canary_label``, ``model_canary_share``, ``model_canary_margin``,
      ``model_canary_min_checks``].
    predict_timeout_s: deadline of one prediction call (retries included) [``predict_timeout_s``].
    predict_retry_s: wait before a failed prediction is retried (doubles up to 16x)
      [``predict_retry_s``].
    cluster_model_path: a ``lens.anomaly.ClusterModel`` file (fk of Algorithm 1); None = every
      customer in one cluster (-1) [``cluster_model``].
    product_segments_path: a product segment map (``lens.segments.SegmentMap``); None = stock-out
      alerts carry no product segment [``product_segments``].
    sessionizer: inactivity timeout [``funnel_inactivity_timeout_s``].
    anomaly: threshold and minimum histories [``anomaly_threshold``, ``anomaly_min_history``,
      ``anomaly_min_sessions``], and the product catalog of the need-level signals, read here
      [``anomaly_catalog``, ``anomaly_need_intervals``, ``anomaly_drop_weight``,
      ``anomaly_new_weight``, ``anomaly_discovery_weight``, ``anomaly_department_weight``]
      (``AnomalyConfig.from_settings``).
    stockout: horizon and smallest shortfall alerted [``stockout_days``,
      ``stockout_min_shortfall``].
    web_bind: address the web server binds to (127.0.0.1 locally).
    max_in_flight: prediction calls in flight per worker at most (fewer while calls miss
      their deadline: ``services.funnel.in_flight``).
    session_timeout_s: how long the consumer group waits for a silent worker before its
      partitions move to the others (or to the same worker restarted after a crash). Faust's
      60 s default stalls those partitions for a minute after a kill -9; 10 s is 3 of Faust's
      3 s heartbeats, and heartbeats come from the consumer's own thread, so a busy event loop
      does not miss them.
    service_name: written into dead letters' ``service``.
    batch_max, batch_within_s: the funnel and store agents take up to ``batch_max`` records at
      a time, waiting at most ``batch_within_s`` for them; each customer's (store's) changed
      state is written to the table once per batch (``services.funnel.tables``), so a busy
      stream pays one write per customer (store) and batch, and a quiet one waits at most
      ``batch_within_s`` longer.
    producer_linger_s: how long the worker's producer waits for more records to send in one
      request (outputs, predictions, changelog records). 5 ms instead of Faust's 0: 7 % less
      worker CPU per session and prediction and 8 % more predictions/s under load, for 10-50 ms
      more median latency (``bench/funnel_load.py``, BENCHMARKS.md).
    state_cache_size: decoded customer states the agent keeps between batches, least recently
      used dropped first: the customers with a basket being scanned or a prediction on its way
      back are the ones worth keeping. A state at the caps (50 sessions of 10 items) is ~17 KB
      as JSON, ~115 KB decoded and ~160 KB once a prediction has read its sessions as baskets
      (kept with them: ``SessionRecord.to_basket``), so the default holds at most ~800 MB.
    store_cache_size: decoded store records (Algorithm 2) the store agent keeps between
      batches, least recently used dropped first. A store's record grows with its customers
      (~30 bytes per predicted cell as JSON, a few times that decoded); a worker holds the
      stores of its store partitions, usually all of them fit.
    validation: limits of ``lens.stream.Validator``.
    """

    kafka: KafkaConnection
    store_dir: Path
    app_id: str
    web_port: int
    sweep_interval_s: float
    quiet_after_s: float
    model_server: str | None
    model_name: str
    model_version_label: str
    canary: Canary
    predict_timeout_s: float
    predict_retry_s: float
    cluster_model_path: Path | None
    product_segments_path: Path | None
    sessionizer: SessionizerConfig
    anomaly: AnomalyConfig
    stockout: StockoutConfig
    web_bind: str = "127.0.0.1"
    max_in_flight: int = 256
    session_timeout_s: float = 10.0
    service_name: str = "funnel-state"
    batch_max: int = 500
    batch_within_s: float = 0.01
    producer_linger_s: float = 0.005
    state_cache_size: int = 5_000
    store_cache_size: int = 256
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be >= 1, got {self.max_in_flight}")
        if (self.batch_max < 1 or self.batch_within_s <= 0 or self.producer_linger_s < 0
                or self.state_cache_size < 0 or self.store_cache_size < 0):
            raise ConfigError(
                f"batch_max must be >= 1, batch_within_s > 0 and producer_linger_s, "
                f"state_cache_size and store_cache_size >= 0, got {self.batch_max}, "
                f"{self.batch_within_s}, {self.producer_linger_s}, {self.state_cache_size} and "
                f"{self.store_cache_size}"
            )

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap

    @property
    def broker_url(self) -> str:
        """Faust's broker URL(s) for ``bootstrap_servers`` (comma-separated hosts)."""
        return ";".join(f"kafka://{host.strip()}" for host in self.bootstrap_servers.split(","))

    @property
    def store_url(self) -> str:
        return f"rocksdb://{self.store_dir.resolve()}"

    @classmethod
    def from_settings(cls, settings: LensSettings, *, no_model: bool = False) -> "FunnelServiceConfig":
        """The worker's config from ``settings``; ``no_model`` = run without a model server."""
        return cls(
            kafka=KafkaConnection.from_settings(settings),
            store_dir=Path(settings.run_dir) / "funnel",
            app_id=settings.funnel_app_id,
            web_port=settings.worker_web_port,
            sweep_interval_s=settings.funnel_sweep_interval_s,
            quiet_after_s=settings.funnel_quiet_after_s,
            model_server=None if no_model else settings.model_server,
            model_name=settings.model_name,
            model_version_label=settings.model_version_label,
            canary=Canary(
                settings.model_canary_label, settings.model_canary_share,
                settings.model_canary_margin, settings.model_canary_min_checks,
            ),
            predict_timeout_s=settings.predict_timeout_s,
            predict_retry_s=settings.predict_retry_s,
            cluster_model_path=settings.cluster_model,
            product_segments_path=settings.product_segments,
            sessionizer=SessionizerConfig(
                inactivity_timeout=dt.timedelta(seconds=settings.funnel_inactivity_timeout_s)
            ),
            anomaly=AnomalyConfig.from_settings(settings),
            stockout=StockoutConfig(n_days=settings.stockout_days,
                                    min_shortfall=settings.stockout_min_shortfall),
        )
