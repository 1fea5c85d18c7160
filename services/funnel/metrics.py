"""Prometheus metrics of the funnel-state worker (``lens_funnel_*``), next to Faust's own.

Records of ``pos.transactions`` reconcile::

    lens_funnel_records_total{outcome="processed"} + {outcome="dead_lettered"} + {outcome="duplicate"}
        == records consumed from pos.transactions
"""

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Any

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import MS_LATENCY_BUCKETS, FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as _PrometheusCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
    """Faust's Prometheus sensor, same metric names, labels and values, counted in plain Python
    numbers and turned into samples when /metrics is scraped (``FaustSamples``). Faust calls
    these methods for every record received, event, table operation and record sent, and each
    Prometheus update takes a lock and checks its arguments: at ~10 updates per record that was
    a few percent of the worker's CPU (BENCHMARKS.md). Faust's own monitor already counts most
    of it (``Monitor``'s fields); the rest are counted here. The per-topic counters start again
    at a rebalance, as Faust's do (it removes their children), and so do the per-partition
    gauges. The sensor's rare events (commits, rebalances, HTTP) stay Prometheus metrics."""

    def __init__(self, metrics: FaustMetrics, registry: CollectorRegistry, **kwargs: Any) -> None:
        super().__init__(metrics=metrics, **kwargs)
        self.events_by_label: dict[str, int] = {}
        self._stream_labels: dict[Any, str] = {}
        self.runtime_ms = LatencyBuckets()
        self.send_ms = LatencyBuckets()
        self.sends_completed = 0
        # what the per-topic counts were at the last rebalance (they count on from there)
        self.received_at_rebalance: dict[str, int] = {}
        self.sent_at_rebalance: dict[str, int] = {}
        samples = FaustSamples(self, metrics)
        for metric in samples.replaced:
            registry.unregister(metric)
        registry.register(samples)

    def _clear_partition_related_metrics(self) -> None:
        super()._clear_partition_related_metrics()
        self.received_at_rebalance = dict(self.messages_received_by_topic)
        self.sent_at_rebalance = dict(self.messages_sent_by_topic)

    def stream_label(self, stream: Any) -> str:
        label = self._stream_labels.get(stream)
        if label is None:
            label = f"stream.{self._stream_label(stream)}.events"
            self._stream_labels[stream] = label
        return label

    # Faust's Monitor keeps the counts of these; Faust's Prometheus updates are left out.
    on_message_in = Monitor.on_message_in
    on_message_out = Monitor.on_message_out
    on_table_get = Monitor.on_table_get
    on_table_set = Monitor.on_table_set
    on_table_del = Monitor.on_table_del
    on_send_initiated = Monitor.on_send_initiated
    track_tp_end_offset = Monitor.track_tp_end_offset

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        label = self.stream_label(stream)
        self.events_by_label[label] = self.events_by_label.get(label, 0) + 1
        return state

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        Monitor.on_stream_event_out(self, tp, offset, stream, event, state)
        if state is not None:
            self.runtime_ms.observe(self.secs_to_ms(self.events_runtime[-1]))

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        Monitor.on_send_completed(self, producer, state, metadata)
        self.sends_completed += 1
        self.send_ms.observe(self.secs_to_ms(self.send_latency[-1]))


class LatencyBuckets:
    """A histogram of Faust's latencies (milliseconds, its buckets) in plain Python numbers."""

    def __init__(self, bounds: tuple[float, ...] = MS_LATENCY_BUCKETS) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # Prometheus buckets are "<= bound"
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative = list(accumulate(self.counts))
        buckets = [(floatToGoString(b), c) for b, c in zip(self.bounds, cumulative)]
        return HistogramMetricFamily(name, documentation,
                                     buckets=[*buckets, ("+Inf", cumulative[-1])],
                                     sum_value=self.sum)


class FaustSamples(Collector):
    """The samples of ``FaustMonitor``'s counts, under the names of the Faust metrics they
    replace (``replaced``, unregistered): read when /metrics is scraped, in the event loop that
    counts them."""

    def __init__(self, monitor: FaustMonitor, metrics: FaustMetrics) -> None:
        self.monitor = monitor
        self._metrics = metrics
        self.replaced = (
            metrics.messages_received, metrics.active_messages,
            metrics.messages_received_per_topics, metrics.messages_received_per_topics_partition,
            metrics.events_runtime_latency, metrics.total_events, metrics.total_active_events,
            metrics.total_events_per_stream, metrics.table_operations,
            metrics.topic_messages_sent, metrics.total_sent_messages,
            metrics.producer_send_latency, metrics.topic_partition_end_offset,
        )

    def collect(self) -> Iterator[Metric]:
        monitor, metrics = self.monitor, self._metrics

        def family(kind: type, metric: Any, labels: tuple[str, ...] = (), value: Any = None):
            (described,) = metric.describe()
            return kind(described.name, described.documentation, labels=labels or None,
                        value=value)

        yield family(CounterMetricFamily, metrics.messages_received,
                     value=monitor.messages_received_total)
        yield family(GaugeMetricFamily, metrics.active_messages, value=monitor.messages_active)
        per_topic = family(CounterMetricFamily, metrics.messages_received_per_topics, ("topic",))
        for topic, count in _since(monitor.messages_received_by_topic,
                                   monitor.received_at_rebalance):
            per_topic.add_metric([topic], count)
        yield per_topic
        read = metrics.messages_received_per_topics_partition
        yield _per_partition(family(GaugeMetricFamily, read, ("topic", "partition")),
                             monitor.tp_read_offsets)
        (runtime,) = metrics.events_runtime_latency.describe()
        yield monitor.runtime_ms.family(runtime.name, runtime.documentation)
        yield family(CounterMetricFamily, metrics.total_events, value=monitor.events_total)
        yield family(GaugeMetricFamily, metrics.total_active_events, value=monitor.events_active)
        per_stream = family(CounterMetricFamily, metrics.total_events_per_stream, ("stream",))
        for label, count in monitor.events_by_label.items():
            per_stream.add_metric([label], count)
        yield per_stream
        tables = family(CounterMetricFamily, metrics.table_operations, ("table", "operation"))
        for name, state in monitor.tables.items():
            for operation in (monitor.KEYS_RETRIEVED, monitor.KEYS_UPDATED, monitor.KEYS_DELETED):
                count = getattr(state, operation)
                if count:
                    tables.add_metric([f"table.{name}", operation], count)
        yield tables
        sent = family(CounterMetricFamily, metrics.topic_messages_sent, ("topic",))
        for topic, count in _since(monitor.messages_sent_by_topic, monitor.sent_at_rebalance):
            sent.add_metric([f"topic.{topic}"], count)
        yield sent
        yield family(CounterMetricFamily, metrics.total_sent_messages,
                     value=monitor.sends_completed)
        (send,) = metrics.producer_send_latency.describe()
        yield monitor.send_ms.family(send.name, send.documentation)
        yield _per_partition(family(GaugeMetricFamily, metrics.topic_partition_end_offset,
                                    ("topic", "partition")), monitor.tp_end_offsets)


def _since(counts: Mapping[str, int], at_rebalance: Mapping[str, int]) -> Iterator[tuple]:
    """Each topic's count since the last rebalance, for the topics counted since."""
    for topic, count in counts.items():
        since = count - at_rebalance.get(topic, 0)
        if since:
            yield topic, since


def _per_partition(metric_family: Any, values: Mapping[Any, int]) -> Any:
    for tp, value in values.items():
        metric_family.add_metric([tp.topic, str(tp.partition)], value)
    return metric_family


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
