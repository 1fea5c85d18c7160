"""StateCache: decoded states between records, one table write per customer and batch, revoked
partitions and failed batches dropped; and the funnel agent's batch on it."""

from dataclasses import dataclass

import faust
import pytest
from prometheus_client import CollectorRegistry

from lens.topics import POS_TRANSACTIONS, SESSIONS
from services.funnel.app import FunnelService
from services.funnel.processor import FunnelProcessor
from services.funnel.tables import StateCache
from tests.unit.services.funnel.conftest import NOW_US, DictTables, closed, line


class CountingTables(DictTables):
    """DictTables that count decodes and writes, and note the current Faust event's partition
    at each write."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []
        self.writes: list[tuple[str, int | None]] = []

    def get_state(self, customer_id):
        self.reads.append(customer_id)
        return super().get_state(customer_id)

    def put_state(self, state):
        event = faust.current_event()
        self.writes.append((state.customer_id, event.message.partition if event else None))
        super().put_state(state)


def feed(processor, cache, records, partition=3):
    for offset, (key, value) in enumerate(records):
        processor.on_pos(cache.partition(partition), partition=partition, offset=offset, key=key,
                         value=value, now_us=NOW_US)


def test_a_customer_is_decoded_once_and_written_once_per_flush(make_config):
    tables = CountingTables()
    cache = StateCache(tables, 100)
    processor = FunnelProcessor(make_config(), predicting=False)
    feed(processor, cache, [
        (b"c1", line("T1", 1, "c1", "milk", 0)),
        (b"c1", line("T1", 2, "c1", "bread", 1)),
        (b"c2", line("U1", 1, "c2", "tea", 1)),
        (b"c1", closed("T1", "c1", 2)),
    ])
    assert tables.reads == ["c1", "c2"]  # new customers: looked up once, then cached
    assert tables.writes == [] and cache.dirty_partitions() == [3]
    assert cache.flush(3) == 2
    assert sorted(c for c, _ in tables.writes) == ["c1", "c2"]
    assert cache.dirty_partitions() == [] and cache.flush(3) == 0
    stored = tables.get_state("c1")
    assert stored.stats.sessions == 1 and stored.open_basket is None
    # the next batch reads the cached state, not the table
    feed(processor, cache, [(b"c1", line("T2", 1, "c1", "jam", 3600))])
    assert tables.reads.count("c1") == 2  # the one above is the test's own read


def test_revoked_partitions_are_read_from_the_table_again(make_config):
    tables = CountingTables()
    cache = StateCache(tables, 100)
    processor = FunnelProcessor(make_config(), predicting=False)
    feed(processor, cache, [(b"c1", line("T1", 1, "c1", "milk", 0))], partition=3)
    feed(processor, cache, [(b"c9", line("V1", 1, "c9", "tea", 0))], partition=5)
    cache.flush(3), cache.flush(5)
    # while partition 3 was away, another worker moved c1 on
    moved = tables.get_state("c1")
    moved.stats.lines_seen = 99
    tables.put_state(moved)
    cache.forget({3})
    assert len(cache) == 1
    assert cache.partition(3).get_state("c1").stats.lines_seen == 99
    assert cache.partition(5).get_state("c9") is not None
    assert tables.reads.count("c9") == 1  # partition 5 kept its entry


def test_a_cleared_cache_loses_unflushed_changes_and_capacity_bounds_clean_entries(make_config):
    tables = CountingTables()
    cache = StateCache(tables, capacity=1)
    processor = FunnelProcessor(make_config(), predicting=False)
    feed(processor, cache, [(b"c1", line("T1", 1, "c1", "milk", 0)),
                            (b"c2", line("U1", 1, "c2", "tea", 0))])
    assert len(cache) == 2  # dirty entries stay until they are written
    cache.flush(3)
    assert len(cache) == 1  # then the least recently used goes
    feed(processor, cache, [(b"c2", line("U1", 2, "c2", "jam", 1))])
    cache.clear()
    assert len(cache) == 0 and cache.dirty_partitions() == []
    assert len(cache.partition(3).get_state("c2").open_basket.line_nos) == 1


def test_a_snapshot_for_the_model_does_not_change_with_the_cached_state(make_config):
    cache = StateCache(DictTables(), 100)
    processor = FunnelProcessor(make_config())
    tables = cache.partition(3)
    result = processor.on_pos(tables, partition=3, offset=0, key=b"c1", now_us=NOW_US,
                              value=line("T1", 1, "c1", "milk", 0))
    result = processor.on_pos(tables, partition=3, offset=1, key=b"c1", now_us=NOW_US,
                              value=closed("T1", "c1", 1))
    (snapshot,) = result.predict
    processor.on_pos(tables, partition=3, offset=2, key=b"c1", now_us=NOW_US,
                     value=line("T2", 1, "c1", "tea", 60))
    processor.on_pos(tables, partition=3, offset=3, key=b"c1", now_us=NOW_US,
                     value=closed("T2", "c1", 61))
    assert len(tables.get_state("c1").sessions) == 2
    assert len(snapshot.sessions) == 1 and snapshot.open_basket is None


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple = ()


@dataclass(eq=False)
class Event:
    message: Message


def test_a_batch_writes_each_customer_once_in_an_event_of_its_partition(make_config):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    tables = CountingTables()
    service.state_cache = StateCache(tables, 100)
    records = [  # partition, offset, key, value
        (3, 0, b"c1", line("T1", 1, "c1", "milk", 0)),
        (5, 0, b"c2", line("U1", 1, "c2", "tea", 0)),
        (3, 1, b"c1", line("T1", 2, "c1", "bread", 1)),
        (3, 2, b"c1", closed("T1", "c1", 2)),
    ]
    events = [Event(Message(POS_TRANSACTIONS.name, p, o, k, v)) for p, o, k, v in records]
    result = service.handle_customer_batch(events)
    assert sorted(tables.writes) == [("c1", 3), ("c2", 5)]
    assert [(o.topic, o.partition) for o in result.outputs] == [(SESSIONS.name, 3)]


def test_a_failed_batch_leaves_nothing_half_applied_in_the_cache(make_config, monkeypatch):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    tables = CountingTables()
    service.state_cache = StateCache(tables, 100)
    ok = Event(Message(POS_TRANSACTIONS.name, 3, 0, b"c1", line("T1", 1, "c1", "milk", 0)))
    service.handle_customer_batch([ok])
    calls = []
    handle = service.handle_customer_record

    def fail_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return handle(*args)

    monkeypatch.setattr(service, "handle_customer_record", fail_second)
    batch = [Event(Message(POS_TRANSACTIONS.name, 3, i, b"c1", line("T1", i + 1, "c1", "tea", i)))
             for i in (1, 2)]
    with pytest.raises(RuntimeError):
        service.handle_customer_batch(batch)
    assert len(service.state_cache) == 0
    assert len(service.state_cache.partition(3).get_state("c1").open_basket.line_nos) == 1
