"""Prometheus metrics of the funnel-state worker (``lens_funnel_*``), next to Faust's own.

Records of ``pos.transactions`` reconcile::

    lens_funnel_records_total{outcome="processed"} + {outcome="dead_lettered"} + {outcome="duplicate"}
        == records consumed from pos.transactions
"""

from typing import Any

from faust.sensors.prometheus import PrometheusMonitor
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as _PrometheusCounter

__all__ = ["FaustMonitor", "FunnelMetrics"]


class Counter(_PrometheusCounter):
    """A Counter whose labelled children are looked up once: prometheus_client's ``labels()``
    checks its arguments and takes a lock on every call, and the worker counts several labelled
    events per record (its records by outcome, sessions by close reason, predictions by
    version). FunnelMetrics never removes a child, so none goes stale."""

    def labels(self, *values: Any, **by_name: Any) -> Any:
        if by_name:
            return super().labels(*values, **by_name)
        children = self.__dict__.setdefault("_lens_children", {})
        child = children.get(values)
        if child is None:
            child = children[values] = super().labels(*values)
        return child


class FaustMonitor(PrometheusMonitor):
    """Faust's Prometheus sensor, same metrics, with each labelled child looked up once: Faust
    calls these methods for every record received, event, table write and record sent, and
    prometheus_client's ``labels()`` (argument checks, a lock) cost more than the update. The
    children of the topic metrics are forgotten when Faust removes them at a rebalance."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._labelled: dict[tuple, Any] = {}

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), *labels)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(*labels)
        return child

    def _clear_partition_related_metrics(self) -> None:
        super()._clear_partition_related_metrics()
        self._labelled.clear()

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.messages_received_total += 1
        self.messages_active += 1
        self.messages_received_by_topic[tp.topic] += 1
        self.tp_read_offsets[tp] = offset
        message.time_in = self.time()
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        self._child(metrics.messages_received_per_topics, tp.topic).inc()
        self._child(metrics.messages_received_per_topics_partition, tp.topic, tp.partition).set(
            offset)

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        state = super(PrometheusMonitor, self).on_stream_event_in(tp, offset, stream, event)
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        child = self._labelled.get(stream)  # the stream itself: its label takes a regex
        if child is None:
            child = self._labelled[stream] = metrics.total_events_per_stream.labels(
                stream=f"stream.{self._stream_label(stream)}.events")
        child.inc()
        return state

    def on_table_get(self, table: Any, key: Any) -> None:
        self._table_or_create(table).keys_retrieved += 1
        self._child(self._metrics.table_operations, f"table.{table.name}",
                    self.KEYS_RETRIEVED).inc()

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        self._table_or_create(table).keys_updated += 1
        self._child(self._metrics.table_operations, f"table.{table.name}", self.KEYS_UPDATED).inc()

    def on_table_del(self, table: Any, key: Any) -> None:
        self._table_or_create(table).keys_deleted += 1
        self._child(self._metrics.table_operations, f"table.{table.name}", self.KEYS_DELETED).inc()

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> Any:
        self._child(self._metrics.topic_messages_sent, f"topic.{topic}").inc()
        self.messages_sent += 1
        self.messages_sent_by_topic[topic] += 1
        return self.time()

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        self.tp_end_offsets[tp] = offset
        self._child(self._metrics.topic_partition_end_offset, tp.topic, tp.partition).set(offset)


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
        self.in_flight_limit = Gauge(
            "lens_funnel_predictions_in_flight_limit",
            "Prediction calls the worker keeps in flight now: max_in_flight, halved when calls "
            "miss their deadline, grown back as they are answered in time.",
            registry=registry,
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
