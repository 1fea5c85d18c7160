"""The sink's contract with a fake consumer: store first, then commit; a redelivery is a no-op."""

import threading

from lens.codec import encode
from lens.history import SessionStore
from services.history import HistorySink
from tests.unit.history.conftest import session


class Record:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def error(self):
        return None

    def value(self):
        return self._value

    def topic(self):
        return "lens.sessions"

    def partition(self):
        return 0

    def offset(self):
        return self._offset


class FakeConsumer:
    """Hands out ``batches`` one per consume(); records what was stored when each commit came."""

    def __init__(self, batches, store: SessionStore) -> None:
        self.batches, self.store = list(batches), store
        self.lines_at_commit: list[int] = []
        self.closed = False

    def subscribe(self, topics):
        assert topics == ["lens.sessions"]

    def consume(self, num_messages, timeout):
        return self.batches.pop(0) if self.batches else []

    def commit(self, asynchronous=True):
        assert asynchronous is False
        self.lines_at_commit.append(self.store.counts()["lines"])

    def close(self):
        self.closed = True


def records(*sessions, start=0):
    return [Record(encode(s), start + i) for i, s in enumerate(sessions)]


def test_each_batch_is_stored_before_its_offsets_are_committed(tmp_path):
    a = session("c1", 1, 5, {"milk": 1})
    b = session("c2", 1, 5, {"tea": 1, "jam": 1})
    c = session("c1", 2, 8, {"milk": 2})
    with SessionStore(tmp_path / "h.sqlite") as store:
        consumer = FakeConsumer([records(a, b), records(c, start=2)], store)
        totals = HistorySink(None, store, consumer=consumer).run(threading.Event(), max_records=3)
        assert consumer.lines_at_commit == [3, 4]
        assert consumer.closed
        assert (totals.stored, totals.duplicates) == (3, 0)


def test_a_batch_redelivered_after_a_crash_lands_once(tmp_path):
    a, b = session("c1", 1, 5, {"milk": 1}), session("c2", 1, 5, {"tea": 1})
    with SessionStore(tmp_path / "h.sqlite") as store:
        # The first sink stored the batch and died before committing: the group hands it out again.
        store.append([a, b])
        consumer = FakeConsumer([records(a, b)], store)
        totals = HistorySink(None, store, consumer=consumer).run(threading.Event(), max_records=2)
        assert (totals.stored, totals.duplicates) == (0, 2)
        assert store.counts()["sessions"] == 2


def test_undecodable_records_are_skipped_and_counted(tmp_path):
    good = session("c1", 1, 5, {"milk": 1})
    with SessionStore(tmp_path / "h.sqlite") as store:
        batch = [Record(b"\xff\xff not a session", 0), *records(good, start=1)]
        consumer = FakeConsumer([batch], store)
        totals = HistorySink(None, store, consumer=consumer).run(threading.Event(), max_records=2)
        assert (totals.stored, totals.undecodable) == (1, 1)
        assert consumer.lines_at_commit == [1]
