import datetime as dt

import pytest

from lens.errors import ConfigError, RuntimeDependencyError
from lens.data.basket import Basket
from services.pos import PosPublisher, parse_speed, replay

T0 = dt.datetime(2026, 1, 5, 10, 0)


def basket(i, minutes, items=2):
    return Basket(f"C{i}", f"T{i}", "S1", T0 + dt.timedelta(minutes=minutes),
                  tuple(f"P{k}" for k in range(items)), (1.0,) * items, (2.0,) * items)


class Sink:
    def __init__(self):
        self.events = []

    def send(self, event):
        self.events.append(event)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("text,expected", [("max", None), ("0", None), (0, None), ("60", 60.0), ("2.5", 2.5)])
def test_parse_speed(text, expected):
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["-1", "fast", "nan"])
def test_parse_speed_rejects_nonsense(text):
    with pytest.raises(ConfigError, match="--speed"):
        parse_speed(text)


def test_replay_sends_every_line_and_close_in_basket_order():
    sink = Sink()
    stats = replay([basket(1, 0, 3), basket(2, 5, 1)], sink, progress=False)
    kinds = [(e.WhichOneof("event"), getattr(e, e.WhichOneof("event")).transaction_id) for e in sink.events]
    assert kinds == [("line", "T1")] * 3 + [("basket_closed", "T1"), ("line", "T2"), ("basket_closed", "T2")]
    assert (stats.lines, stats.baskets) == (4, 2)
    assert "4 lines and 2 baskets" in stats.summary()


def test_replay_paces_by_event_time_divided_by_speed():
    # Baskets at 0, 60 and 120 minutes at speed 60 -> sent at 0, 60 and 120 seconds.
    clock = FakeClock()
    replay([basket(1, 0), basket(2, 60), basket(3, 120)], Sink(), speed=60, progress=False,
           clock=clock, sleep=clock.sleep)
    assert clock.sleeps == pytest.approx([60.0, 60.0])


def test_replay_without_speed_never_sleeps_and_duration_bounds_it():
    clock = FakeClock()
    replay([basket(i, i) for i in range(5)], Sink(), speed=None, progress=False, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []
    clock = FakeClock()
    sink = Sink()
    # One basket per minute at speed 1 (real time), stopped after 150 s: baskets at 0, 60, 120 s.
    stats = replay([basket(i, i) for i in range(10)], sink, speed=1, duration_s=150, progress=False,
                   clock=clock, sleep=clock.sleep)
    assert stats.baskets == 3


def test_replay_restamps_with_now_for_live_streams():
    sink = Sink()
    now = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)
    replay([basket(1, 0)], sink, restamp=True, now=lambda: now, progress=False)
    assert sink.events[0].line.timestamp.ToDatetime(dt.timezone.utc) == now


class FakeProducer:
    def __init__(self, full_first=0, error=None):
        self.full = full_first
        self.error = error
        self.records = []
        self.pending = []

    def produce(self, topic, value, key, on_delivery):
        if self.full:
            self.full -= 1
            raise BufferError("queue full")
        self.records.append((topic, key, value))
        self.pending.append(on_delivery)

    def poll(self, timeout):
        for callback in self.pending:
            callback(self.error, None)
        self.pending = []

    def flush(self, timeout):
        self.poll(0)
        return 0


def test_publisher_keys_by_customer_and_waits_when_the_queue_is_full():
    producer = FakeProducer(full_first=2)
    with PosPublisher("x:1", producer=producer) as publisher:
        replay([basket(7, 0, 2)], publisher, progress=False)
    assert [r[0] for r in producer.records] == ["pos.transactions"] * 3
    assert {r[1] for r in producer.records} == {b"C7"}
    assert publisher.acknowledged == 3


def test_publisher_raises_when_the_broker_refuses():
    publisher = PosPublisher("x:1", producer=FakeProducer(error="broker down"))
    publisher.send_raw(b"C1", b"v")  # queued; the refusal arrives with the delivery report
    with pytest.raises(RuntimeDependencyError, match="broker down"):
        publisher.close()
    with pytest.raises(RuntimeDependencyError, match="refused records"):
        publisher.send_raw(b"C1", b"v")  # and stops the replay at the next record
