import pytest

from lens import v1
from lens.errors import ConfigError
from services.alerts import AlertMetrics, AlertSubscriber, DeliveredIds, SubscriberConfig
from tests.unit.services.alerts.helpers import (
    FakeConsumer, FakeProducer, FlakySink, Record, anomaly, stockout,
)

ANOMALY, STOCKOUT = "lens.alerts.anomaly", "lens.alerts.stockout"


def subscriber(records, sinks, *, delivered=None, producer=None, **config):
    consumer = FakeConsumer(records)
    sleeps = []
    sub = AlertSubscriber(
        "x:1", sinks, config=SubscriberConfig(**config), delivered=delivered,
        metrics=AlertMetrics(), consumer=consumer, dead_letter_producer=producer or FakeProducer(),
        sleep=sleeps.append,
    )
    return sub, consumer, sleeps


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_delivers_to_every_sink_then_commits():
    a, b = FlakySink(), FlakySink()
    sub, consumer, _ = subscriber(
        [Record(ANOMALY, anomaly().SerializeToString(), 0), Record(STOCKOUT, stockout().SerializeToString(), 5)],
        [a, b])
    for record in list(consumer.records):
        sub.handle(consumer.poll(0))
    assert a.delivered == b.delivered == ["01104905:7", "S1:P0042:2026-02-20:1"]
    assert consumer.committed == [0, 5]
    assert value(sub.metrics, "lens_alerts_delivered_total", type="anomaly", sink="flaky") == 2
    assert value(sub.metrics, "lens_alerts_received_total", type="stockout") == 1


def test_retries_with_exponential_backoff_until_delivered():
    sink = FlakySink(failures=3)
    sub, consumer, sleeps = subscriber([Record(ANOMALY, anomaly().SerializeToString())], [sink],
                                       max_attempts=5, backoff_s=0.5, backoff_max_s=1.5)
    sub.handle(consumer.poll(0))
    assert sink.delivered == ["01104905:7"] and sleeps == [0.5, 1.0, 1.5]
    assert value(sub.metrics, "lens_alerts_delivery_failures_total", type="anomaly", sink="flaky") == 3
    assert consumer.committed == [0]


def test_after_max_attempts_the_alert_goes_to_the_dead_letter_topic_then_commits():
    producer = FakeProducer()
    raw = anomaly().SerializeToString()
    sub, consumer, sleeps = subscriber([Record(ANOMALY, raw, 42, key=b"01104905", partition=3)],
                                       [FlakySink(failures=99)], producer=producer, max_attempts=3)
    sub.handle(consumer.poll(0))
    assert len(sleeps) == 2
    (topic, key, letter_bytes), = producer.records
    letter = v1.DeadLetter.FromString(letter_bytes)
    assert topic == "lens.dlq" and key == b"01104905"
    assert letter.reason == v1.DeadLetterReason.DEAD_LETTER_REASON_DELIVERY_FAILED
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (ANOMALY, 3, 42)
    assert letter.original_value == raw and letter.original_key == b"01104905"
    assert "flaky failed after 3 attempt(s)" in letter.detail and letter.service == "alert-subscriber"
    assert consumer.committed == [42]


def test_a_permanent_refusal_is_not_retried():
    sink = FlakySink(failures=1, retryable=False)
    producer = FakeProducer()
    sub, consumer, sleeps = subscriber([Record(STOCKOUT, stockout().SerializeToString())], [sink],
                                       producer=producer)
    sub.handle(consumer.poll(0))
    assert sink.attempts == 1 and sleeps == [] and len(producer.records) == 1


def test_no_commit_when_the_dead_letter_is_not_acknowledged():
    sub, consumer, _ = subscriber([Record(ANOMALY, anomaly().SerializeToString())],
                                  [FlakySink(failures=99)], producer=FakeProducer(error="down"), max_attempts=1)
    with pytest.raises(Exception, match="could not dead-letter"):
        sub.handle(consumer.poll(0))
    assert consumer.committed == []


def test_no_commit_when_a_sink_crashes_and_a_restart_redelivers(tmp_path):
    raw = anomaly().SerializeToString()
    crashing = FlakySink(crash=True)
    sub, consumer, _ = subscriber([Record(ANOMALY, raw, 7)], [crashing],
                                  delivered=DeliveredIds(tmp_path / "ids.txt"))
    with pytest.raises(RuntimeError):
        sub.handle(consumer.poll(0))
    assert consumer.committed == []
    sub.delivered.close()
    # The restarted subscriber gets the uncommitted record again and delivers it.
    healthy = FlakySink()
    sub2, consumer2, _ = subscriber([Record(ANOMALY, raw, 7)], [healthy],
                                    delivered=DeliveredIds(tmp_path / "ids.txt"))
    sub2.handle(consumer2.poll(0))
    assert healthy.delivered == ["01104905:7"] and consumer2.committed == [7]


def test_an_alert_id_already_delivered_is_skipped_even_after_a_restart(tmp_path):
    raw = anomaly().SerializeToString()
    sink = FlakySink()
    sub, consumer, _ = subscriber([Record(ANOMALY, raw, 0), Record(ANOMALY, raw, 1)], [sink],
                                  delivered=DeliveredIds(tmp_path / "ids.txt"))
    sub.handle(consumer.poll(0))
    sub.handle(consumer.poll(0))
    sub.delivered.close()
    sub2, consumer2, _ = subscriber([Record(ANOMALY, raw, 0)], [sink], delivered=DeliveredIds(tmp_path / "ids.txt"))
    sub2.handle(consumer2.poll(0))
    assert sink.delivered == ["01104905:7"]
    assert consumer.committed == [0, 1] and consumer2.committed == [0]
    assert value(sub.metrics, "lens_alerts_deduped_total", type="anomaly") == 1


def test_undecodable_and_idless_records_are_dead_lettered():
    producer = FakeProducer()
    sink = FlakySink()
    sub, consumer, _ = subscriber([Record(ANOMALY, b"\xff\xff\xff", 0), Record(STOCKOUT, v1.StockoutAlert().SerializeToString(), 1)],
                                  [sink], producer=producer)
    sub.handle(consumer.poll(0))
    sub.handle(consumer.poll(0))
    reasons = [v1.DeadLetter.FromString(r[2]).reason for r in producer.records]
    assert reasons == [v1.DeadLetterReason.DEAD_LETTER_REASON_UNDECODABLE, v1.DeadLetterReason.DEAD_LETTER_REASON_MISSING_FIELD]
    assert sink.delivered == [] and consumer.committed == [0, 1]


def test_run_loop_stops_and_closes():
    import threading

    sink = FlakySink()
    sub, consumer, _ = subscriber([Record(ANOMALY, anomaly(alert_id=f"c:{i}").SerializeToString(), i) for i in range(3)], [sink])
    assert sub.run(threading.Event(), max_records=3) == 3
    assert consumer.closed and consumer.committed == [0, 1, 2]


def test_config_is_checked():
    with pytest.raises(ConfigError, match="--max-attempts"):
        SubscriberConfig(max_attempts=0)
    with pytest.raises(ConfigError, match="alert topics"):
        SubscriberConfig(topics=("pos.transactions",))
    assert SubscriberConfig(backoff_s=1, backoff_max_s=5).backoff(4) == 5
