"""The worker's cuts of Faust's per-record overhead: one task per record delivered
(``install_fast_delivery``), the started producer without a detour through the event loop
(``_Topic``), the Prometheus sensor counted in plain numbers (``FaustMonitor``) and the
worker's own counters' cached children (``services.funnel.metrics.Counter``)."""

import asyncio

import pytest
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from services.funnel.app import FunnelService, _Topic, install_fast_delivery
from services.funnel.metrics import FaustMonitor, FunnelMetrics


class Consumer:
    """What ``install_fast_delivery`` uses of Faust's consumer; ``wait_first`` is the
    fallback, which records what it was given."""

    def __init__(self) -> None:
        self.suspend_flow = asyncio.Event()
        self._stopped = asyncio.Event()
        self._crashed = asyncio.Event()
        self.fallback: list[tuple] = []

    async def wait_first(self, *coros, timeout=None):
        self.fallback.append(coros)
        for coro in coros:
            coro.close()
        return "fallback"

    def waiters(self) -> int:
        return sum(len(e._waiters) for e in (self.suspend_flow, self._stopped, self._crashed))


def test_delivery_returns_its_result_and_leaves_no_waiter():
    async def main():
        consumer = Consumer()
        install_fast_delivery(consumer)

        async def deliver():
            await asyncio.sleep(0)
            return 42

        result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        return consumer, result

    consumer, result = asyncio.run(main())
    assert result.results == [42] and not result.stopped
    assert consumer.fallback == [] and consumer.waiters() == 0


@pytest.mark.parametrize("event", ["suspend_flow", "_stopped", "_crashed"])
def test_a_suspended_flow_a_stop_or_a_crash_ends_the_wait_and_cancels_the_delivery(event):
    async def main():
        consumer = Consumer()
        install_fast_delivery(consumer)
        blocked = asyncio.Event()
        cancelled = []

        async def deliver():  # a stream buffer that stays full
            try:
                await blocked.wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        waiting = asyncio.ensure_future(
            consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        getattr(consumer, event).set()
        result = await waiting
        await asyncio.sleep(0)
        return consumer, result, cancelled

    consumer, result, cancelled = asyncio.run(main())
    assert result.stopped and result.results == []
    assert cancelled == [True] and consumer.waiters() == 0


def test_the_delivery_error_propagates():
    async def main():
        consumer = Consumer()
        install_fast_delivery(consumer)

        async def deliver():
            raise KeyError("boom")

        with pytest.raises(KeyError):
            await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        return consumer

    assert asyncio.run(main()).waiters() == 0


def test_cancelling_the_wait_cancels_the_delivery():
    async def main():
        consumer = Consumer()
        install_fast_delivery(consumer)
        started, cancelled = asyncio.Event(), []

        async def deliver():
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        waiting = asyncio.ensure_future(
            consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
        await started.wait()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0)
        return consumer, cancelled

    consumer, cancelled = asyncio.run(main())
    assert cancelled == [True] and consumer.waiters() == 0


def test_other_waits_and_a_flow_already_suspended_go_to_faust():
    async def main():
        consumer = Consumer()
        install_fast_delivery(consumer)
        install_fast_delivery(consumer)  # once only

        async def deliver():
            return 1

        assert await consumer.wait_first(deliver()) == "fallback"
        assert await consumer.wait_first(deliver(), consumer.suspend_flow.wait(),
                                         timeout=1.0) == "fallback"
        consumer.suspend_flow.set()
        assert await consumer.wait_first(deliver(), consumer.suspend_flow.wait()) == "fallback"
        return consumer

    assert len(asyncio.run(main()).fallback) == 3


def test_the_app_uses_the_lean_topic_and_monitor(make_config):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    assert isinstance(service.app.monitor, FaustMonitor)
    assert isinstance(service.outputs["lens.sessions"], _Topic)
    assert isinstance(service.states.changelog_topic, _Topic)


def test_a_started_producer_is_used_without_asking_the_app(make_config):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    producer = service.app.producer
    topic = service.outputs["lens.sessions"]

    async def not_started():
        raise AssertionError("asked the app")

    service.app.maybe_start_producer = not_started
    producer._started.set()
    assert asyncio.run(topic._get_producer()) is producer


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_the_monitor_counts_as_faust_and_starts_its_topic_counts_again_at_a_rebalance(
    make_config,
):
    registry = CollectorRegistry()
    service = FunnelService(make_config(model_server=None), registry=registry)
    monitor = service.app.monitor
    tp = TP("pos.transactions", 3)

    class Message:
        time_in = None

    for offset in (7, 8):
        monitor.on_message_in(tp, offset, Message())
    monitor.on_send_initiated(None, "lens.sessions", None, 1, 2)
    monitor.on_table_set(service.states, "k", b"v")
    monitor.track_tp_end_offset(tp, 9)
    prefix = "lens_funnel_faust"
    assert value(registry, f"{prefix}_messages_received_per_topic_total",
                 topic="pos.transactions") == 2
    assert value(registry, f"{prefix}_messages_received_per_topics_partition",
                 topic="pos.transactions", partition="3") == 8
    assert value(registry, f"{prefix}_topic_messages_sent_total", topic="topic.lens.sessions") == 1
    assert value(registry, f"{prefix}_table_operations_total",
                 table="table.funnel-state", operation="keys_updated") == 1
    assert value(registry, f"{prefix}_topic_partition_end_offset",
                 topic="pos.transactions", partition="3") == 9
    assert monitor.messages_received_by_topic["pos.transactions"] == 2
    assert monitor._children == []  # the sensor is a mode Service: its child services untouched

    monitor._clear_partition_related_metrics()  # what a rebalance does
    monitor.on_message_in(tp, 10, Message())
    monitor.on_send_initiated(None, "lens.sessions", None, 1, 2)
    assert value(registry, f"{prefix}_messages_received_per_topic_total",
                 topic="pos.transactions") == 1
    assert value(registry, f"{prefix}_topic_messages_sent_total", topic="topic.lens.sessions") == 1


class _Stream:
    """What the sensor reads of a Faust stream."""

    def __init__(self, label: str) -> None:
        self.shortlabel = f"Stream: {label}"
        self.task_owner = self  # weakly referenced by Faust's monitor

    def __str__(self) -> str:
        return self.shortlabel


class _Table:
    def __init__(self, name: str) -> None:
        self.name = name


def _samples(registry) -> dict:
    """Every sample but the ``_created`` timestamps: (name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect() for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_the_monitor_exposes_what_fausts_prometheus_sensor_exposes():
    """Faust's own sensor and the worker's, given the same calls on the same clock, give the
    same /metrics samples, also after a rebalance."""
    now = [0.0]
    monitors = []
    for cls in (PrometheusMonitor, FaustMonitor):
        registry = CollectorRegistry()
        metrics = FaustMetrics.create(registry, "lens_funnel_faust")
        kwargs = {"registry": registry} if cls is FaustMonitor else {}
        monitors.append((cls(metrics=metrics, time=lambda: now[0], **kwargs), registry))
    funnel, stores = _Stream("funnel"), _Stream("stores")
    states, parts = _Table("funnel-state"), _Table("store-stockout")

    class Message:
        time_in = None

    def traffic(offsets: range) -> None:
        for offset in offsets:
            for monitor, _ in monitors:
                tp = TP("pos.transactions" if offset % 3 else "lens-ticks", offset % 4)
                message = Message()
                now[0] = float(offset)
                monitor.on_message_in(tp, offset, message)
                stream = funnel if offset % 2 else stores
                state = monitor.on_stream_event_in(tp, offset, stream, None)
                now[0] += 0.004 * (offset % 7)  # 0 to 24 ms: several buckets
                monitor.on_stream_event_out(tp, offset, stream, None, state)
                monitor.on_message_out(tp, offset, message)
                monitor.on_table_get(states, "k")
                monitor.on_table_set(parts if offset % 5 else states, "k", b"v")
                if offset % 6 == 0:
                    monitor.on_table_del(states, "k")
                sent = monitor.on_send_initiated(None, "lens.sessions", None, 1, 2)
                now[0] += 0.3 * (offset % 3)  # up to 600 ms
                monitor.on_send_completed(None, sent, None)
                monitor.track_tp_end_offset(tp, offset + 10)

    traffic(range(40))
    (_, faust_registry), (_, our_registry) = monitors
    assert _samples(our_registry) == _samples(faust_registry)
    assert _samples(our_registry)[("lens_funnel_faust_messages_received_total", ())] == 40
    for monitor, _ in monitors:
        monitor._clear_partition_related_metrics()  # what a rebalance does
    traffic(range(40, 47))
    assert _samples(our_registry) == _samples(faust_registry)
    assert _samples(our_registry)[("lens_funnel_faust_messages_received_per_topic_total",
                                   (("topic", "pos.transactions"),))] == 5


def test_the_workers_counters_look_each_child_up_once_and_count_as_prometheus():
    registry = CollectorRegistry()
    metrics = FunnelMetrics(registry)
    processed = metrics.records.labels("processed")
    assert metrics.records.labels("processed") is processed
    assert metrics.records.labels(outcome="processed") is not None  # by name: prometheus' own
    processed.inc()
    metrics.records.labels("processed").inc(2)
    metrics.records.labels("duplicate").inc()
    metrics.predictions.labels("3", "canary").inc()
    text = generate_latest(registry).decode()
    assert 'lens_funnel_records_total{outcome="processed"} 3.0' in text
    assert 'lens_funnel_records_total{outcome="duplicate"} 1.0' in text
    assert 'lens_funnel_predictions_total{label="canary",version="3"} 1.0' in text
