"""Prometheus metrics of the funnel-state worker (``lens_funnel_*``), next to Faust's own.

Records of ``pos.transactions`` reconcile::

    lens_funnel_records_total{outcome="processed"} + {outcome="dead_lettered"} + {outcome="duplicate"}
        == records consumed from pos.transactions
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["FunnelMetrics"]


class FunnelMetrics:
    """All LENS counters of one worker, registered in ``registry`` (a fresh one per app in tests)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "lens_funnel_records",
            "pos.transactions records by outcome (processed, dead_lettered, duplicate).",
            ["outcome"], registry=registry,
        )
        self.sessions_closed = Counter(
            "lens_funnel_sessions_closed", "Sessions emitted to lens.sessions by close reason.",
            ["reason"], registry=registry,
        )
        self.dead_letters = Counter(
            "lens_funnel_dead_letters", "Records sent to lens.dlq by source topic and reason.",
            ["topic", "reason"], registry=registry,
        )
        self.duplicates = Counter(
            "lens_funnel_duplicates", "Resent transaction lines ignored.", registry=registry,
        )
        self.predictions = Counter(
            "lens_funnel_predictions", "Predictions emitted to lens.predictions, by the model "
            "version and label that made them.", ["version", "label"], registry=registry,
        )
        self.prediction_latency = Histogram(
            "lens_funnel_prediction_latency_seconds",
            "Time from the request to the model server until its answer, per prediction.",
            registry=registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )
        self.model_errors = Counter(
            "lens_funnel_model_errors",
            "Failed prediction attempts by gRPC code (retried later).", ["code"], registry=registry,
        )
        self.predictions_pending = Gauge(
            "lens_funnel_predictions_pending",
            "Customers whose latest session has no prediction yet (waiting or retrying).",
            registry=registry,
        )
        self.alerts = Counter(
            "lens_funnel_alerts", "Alerts emitted by type (anomaly, stockout).", ["type"],
            registry=registry,
        )
        self.prediction_checks = Counter(
            "lens_funnel_prediction_checks",
            "Predictions checked against the customer's next basket, by model label, version and "
            "outcome (hit: the basket shares a product with it): the live hit rate per version.",
            ["label", "version", "outcome"],
            registry=registry,
        )
        self.canary_rolled_back = Gauge(
            "lens_funnel_canary_rolled_back",
            "1 once this worker stopped routing customers to the canary label.", registry=registry,
        )
        self.open_baskets = Gauge(
            "lens_funnel_open_baskets", "Baskets being scanned on this worker's partitions.",
            registry=registry,
        )
        self.sweeps = Counter(
            "lens_funnel_sweeps", "Idle-basket sweeps run (one per partition per interval).",
            registry=registry,
        )
        self.resupplies = Counter(
            "lens_funnel_resupplies", "inventory.resupplies records by outcome.", ["outcome"],
            registry=registry,
        )
