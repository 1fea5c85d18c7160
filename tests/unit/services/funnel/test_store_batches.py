"""The store agent's batches over ``StoreCache``: the same alerts and the same table as one event
at a time, one write per changed part of a store (head, contributor, day, plan day) per batch,
reads of the parts an event touches, revoked partitions and failed batches read from the table
again, and tables of the whole-record layout still read."""

import json
import random

import faust
import pytest
from prometheus_client import CollectorRegistry

from lens import v1
from lens.errors import DataError
from lens.stockout import ContributionUpdate, StoreStockout
from lens.stream.event_time import iso_date
from lens.topics import STOCKOUT_ALERTS
from services.funnel.app import FunnelService
from services.funnel.processor import encode_store_event, store_topic_name
from services.funnel.stockout import (
    StoreCache,
    contribution_key,
    day_key,
    decode_store_events,
    encode_resupply_event,
    load_store,
    members_key,
    plan_key,
)
from tests.unit.services.funnel.conftest import DictTables, store_event
from tests.unit.services.funnel.test_tables import Event, Message

DAY_US = 86_400_000_000
T0 = 1_772_409_600_000_000  # 2026-03-02T00:00Z
DAYS = [f"2026-03-{d:02d}" for d in range(2, 14)]


class CountingStoreTables(DictTables):
    """DictTables that count store reads and note each write and delete with the partition of
    the current Faust event."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []
        self.writes: list[tuple[str, int | None]] = []

    def get_store(self, store_id):
        self.reads.append(store_id)
        return super().get_store(store_id)

    def put_store(self, store_id, data):
        event = faust.current_event()
        self.writes.append((store_id, event.message.partition if event else None))
        super().put_store(store_id, data)

    def delete_store(self, store_id):
        event = faust.current_event()
        self.writes.append((f"-{store_id}", event.message.partition if event else None))
        super().delete_store(store_id)


def demand(store, customer, cells, hours, version=1) -> bytes:
    """cells: {(product, day): units}."""
    return encode_store_event(ContributionUpdate(
        store, customer, {cell: int(units * 1_000_000) for cell, units in cells.items()},
        T0 + int(hours * 3_600_000_000), ("lens", version, "")))


def resupply(store, product, day, units) -> bytes:
    return encode_resupply_event(
        v1.Resupply(store_id=store, product_id=product, day=day, quantity=units))


def store_events(seed: int, n: int = 300) -> list[tuple[int, bytes]]:
    """(partition, value) of a mixed stream for two stores: plans for days to come, customers'
    demand replacing their earlier demand, event time moving on over ~10 days (so days expire),
    a few predictions out of order and a few undecodable records."""
    rng = random.Random(seed)
    partitions = {"S1": 1, "S2": 3}
    products = [f"p{i}" for i in range(6)]
    events = []
    hours = 0.0
    for _ in range(n):
        store = rng.choice(sorted(partitions))
        hours += rng.uniform(0, 0.8)
        today = int(hours // 24)
        roll = rng.random()
        if roll < 0.3:
            day = DAYS[min(today + rng.randrange(0, 3), len(DAYS) - 1)]
            value = resupply(store, rng.choice(products), day, rng.randrange(0, 6))
        elif roll < 0.98:
            late = rng.random() < 0.1
            cells = {
                (rng.choice(products), DAYS[min(today + rng.randrange(0, 3), len(DAYS) - 1)]):
                    rng.uniform(0.2, 3.0)
                for _ in range(rng.randrange(0, 4))
            }
            value = demand(store, f"c{rng.randrange(12)}", cells, hours - 30 if late else hours)
        else:
            value = b'{"t": "demand"}'
        events.append((partitions[store], value))
    return events


def in_memory(config, events) -> dict[str, tuple[StoreStockout, int | None]]:
    """Each store's whole ``StoreStockout`` and watermark after ``events``, with nothing stored."""
    stores: dict[str, tuple[StoreStockout, int | None]] = {}
    for _, value in events:
        try:
            (event,) = decode_store_events(value)
        except DataError:
            continue
        whole, watermark = stores.get(event.store_id) or (
            StoreStockout(event.store_id, config.stockout), None)
        if isinstance(event, ContributionUpdate):
            whole.apply(event)
            if watermark is None or event.as_of > watermark:
                watermark = event.as_of
                whole.expire_before(iso_date(watermark - DAY_US))
        else:
            whole.on_resupply(event)
        stores[event.store_id] = whole, watermark
    return stores


def as_event(offset: int, partition: int, value: bytes, config) -> Event:
    return Event(Message(store_topic_name(config), partition, offset, None, value))


def batched(make_config, events, batch_size, capacity=100):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    tables = CountingStoreTables()
    service.store_cache = StoreCache(tables, service.config, capacity)
    outputs = []
    wrapped = [as_event(i, p, v, service.config) for i, (p, v) in enumerate(events)]
    for start in range(0, len(wrapped), batch_size):
        outputs += service.handle_store_batch(wrapped[start:start + batch_size]).outputs
    return service, tables, outputs


def alerts_of(outputs) -> list[tuple[bytes, str, str, float, float]]:
    found = []
    for out in outputs:
        if out.topic == STOCKOUT_ALERTS.name:
            alert = v1.StockoutAlert.FromString(out.value)
            found.append((out.key, alert.alert_id, alert.day, alert.shortfall,
                          alert.resupply_quantity))
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batches_give_the_same_alerts_and_table_as_one_event_at_a_time(make_config, seed):
    events = store_events(seed)
    service, _, _ = batched(make_config, [], 1)
    one_by_one, outputs = DictTables(), []
    for partition, value in events:
        try:
            outputs += store_event(service.store_processor, one_by_one, value, partition).outputs
        except Exception:  # the malformed ones: the agent dead-letters them (below)
            continue
    expected = alerts_of(outputs)
    assert len(expected) > 10  # the stream does alert, and re-alert
    # days expired on the way: their keys are gone from the table, with customers left without
    # cells
    assert plan_key("S1", DAYS[0]) not in one_by_one.stores
    assert day_key("S1", DAYS[0]) not in one_by_one.stores
    head = json.loads(one_by_one.stores["S1"])
    assert head["days"][0] > DAYS[0]
    assert {k for k in one_by_one.stores if k.startswith("S1|day|")} == {
        day_key("S1", d) for d in head["days"]}
    members = json.loads(one_by_one.stores[members_key("S1")])
    assert 0 < len(members) <= 12
    assert {k for k in one_by_one.stores if k.startswith("S1|contributor|")} == {
        contribution_key("S1", c) for c in members}
    # the parts hold the state one whole StoreStockout in memory gets to (as the table's one
    # record did)
    for store_id, (whole, watermark) in in_memory(service.config, events).items():
        record = load_store(one_by_one, store_id, service.config)
        assert record.stockout.to_dict() == whole.to_dict()
        assert record.watermark == watermark
    for batch_size in (1, 7, 64, 500):
        for capacity in (0, 100):
            _, tables, outputs = batched(make_config, events, batch_size, capacity)
            assert alerts_of(outputs) == expected, (batch_size, capacity)
            assert tables.stores == one_by_one.stores, (batch_size, capacity)
            letters = [o for o in outputs if o.topic != STOCKOUT_ALERTS.name]
            assert len(letters) == sum(v == b'{"t": "demand"}' for _, v in events)


def parts(store, contributors, days, plans=()) -> list[str]:
    """The keys of a store's head and of the parts named."""
    return [store, *(contribution_key(store, c) for c in contributors),
            *(day_key(store, d) for d in days), *(plan_key(store, d) for d in plans)]


def test_a_batch_writes_each_changed_part_once_in_its_partition(make_config):
    events = [
        (1, resupply("S1", "milk", "2026-03-03", 3)),
        (1, resupply("S1", "eggs", "2026-03-03", 1)),
        (1, resupply("S1", "milk", "2026-03-04", 9)),
        (3, resupply("S2", "tea", "2026-03-03", 1)),
        *[(1, demand("S1", f"c{i}", {("milk", "2026-03-03"): 1.5}, 1)) for i in range(6)],
        *[(3, demand("S2", f"c{i}", {("tea", "2026-03-03"): 0.5}, 1)) for i in range(4)],
        (1, b"not json"),
    ]
    _, tables, outputs = batched(make_config, events, len(events))
    assert sorted(tables.writes) == sorted([
        *((key, 1) for key in parts("S1", [f"c{i}" for i in range(6)], ["2026-03-03"],
                                    ["2026-03-03", "2026-03-04"])),
        (members_key("S1"), 1),
        *((key, 3) for key in parts("S2", [f"c{i}" for i in range(4)], ["2026-03-03"],
                                    ["2026-03-03"])),
        (members_key("S2"), 3),
    ])
    assert tables.reads == ["S1", "S2"]  # new stores: looked up once, then cached
    # S1 milk on 03-03: plan 3, demand 4.5 .. 9 (1, 3, 4 and 6 whole units short); S2 tea: 1
    # vs 1.5 (half a unit short: not above the default min_shortfall) and 2
    assert [a[1] for a in alerts_of(outputs)] == [
        *(f"S1:milk:2026-03-03:{i}" for i in (1, 2, 3, 4)), "S2:tea:2026-03-03:1"]
    record = load_store(tables, "S1", make_config())
    assert len(record.stockout.contributions) == 6
    assert record.stockout.residual("milk", "2026-03-03") == -6.0
    # the next batch reads the cached store, not the table, and writes only what changed: c1
    # moves its demand to 03-04 (its old and new day, the head's watermark; no other customer)
    service, tables, _ = batched(make_config, events, len(events))
    tables.reads.clear(), tables.writes.clear()
    service.handle_store_batch([as_event(99, 1, demand("S1", "c1", {("milk", "2026-03-04"): 1},
                                                       2), service.config)])
    assert tables.reads == []
    assert sorted(tables.writes) == sorted(
        (key, 1) for key in parts("S1", ["c1"], ["2026-03-03", "2026-03-04"]))
    # a resupply that changes no alert writes its plan day and nothing else
    tables.writes.clear()
    service.handle_store_batch([as_event(100, 1, resupply("S1", "bread", "2026-03-04", 1),
                                         service.config)])
    assert tables.writes == [(plan_key("S1", "2026-03-04"), 1)]
    # a batch of nothing but a dead letter writes nothing
    tables.writes.clear()
    result = service.handle_store_batch([as_event(101, 1, b"[]", service.config)])
    assert tables.writes == [] and len(result.outputs) == 1


def big_store_events(customers: int = 60) -> list[tuple[int, bytes]]:
    """One store with a 5-day plan of 20 products and ``customers`` customers of 8 cells each."""
    events = [(1, resupply("S1", f"p{p}", day, 3)) for day in DAYS[:5] for p in range(20)]
    return events + [
        (1, demand("S1", f"c{c}", {(f"p{(c + k) % 20}", DAYS[k % 5]): 0.4 for k in range(8)},
                   1 + c / 100))
        for c in range(customers)]


def test_writes_and_reads_are_of_the_parts_an_event_touches_not_the_whole_store(make_config):
    service, tables, _ = batched(make_config, big_store_events(), 15)
    whole = sum(len(v) for v in tables.stores.values())
    tables.writes.clear()
    update = demand("S1", "c7", {("p7", DAYS[1]): 2.0}, 3)
    service.handle_store_batch([as_event(999, 1, update, service.config)])
    # c7 had cells on every one of the 5 days: each is rewritten, no other customer is
    written = sorted(key for key, _ in tables.writes)
    assert written == sorted(parts("S1", ["c7"], DAYS[:5]))
    assert sum(len(tables.stores[key]) for key in written) < whole / 3
    # one event at a time (no cache): it reads the head, the list of customers, its customer and
    # the days it touches with their plan, not the other customers
    tables.reads.clear()
    store_event(service.store_processor, tables, demand("S1", "c8", {("p0", DAYS[4]): 1.0}, 3),
                1)
    old_days = sorted({DAYS[k % 5] for k in range(8)})
    assert tables.reads == ["S1", members_key("S1"), contribution_key("S1", "c8"),
                            *(day_key("S1", d) for d in old_days),
                            *(plan_key("S1", d) for d in old_days)]


def test_a_revoked_partition_reads_its_stores_from_the_table_again(make_config):
    events = [(1, resupply("S1", "milk", "2026-03-03", 3)),
              (3, resupply("S2", "tea", "2026-03-03", 1)),
              (1, demand("S1", "a", {("milk", "2026-03-03"): 2}, 1))]
    service, tables, _ = batched(make_config, events, len(events))
    assert len(service.store_cache) == 2
    # while partition 1 was away, another worker moved S1 on: b's demand puts it 1 short
    store_event(service.store_processor, tables,
                demand("S1", "b", {("milk", "2026-03-03"): 2}, 1), 1)
    service.store_cache.forget({1})
    assert len(service.store_cache) == 1
    tables.reads.clear()
    result = service.handle_store_batch([as_event(
        9, 1, demand("S1", "c", {("milk", "2026-03-03"): 1}, 2), service.config)])
    # the table's S1 (a + b = 4 > 3, already alerted at 1 short) plus c: 2 short
    assert [a[1:4] for a in alerts_of(result.outputs)] == [("S1:milk:2026-03-03:2", "2026-03-03",
                                                            2.0)]
    # its head and list of customers, then the day c touches and its plan (c is new: no read)
    assert tables.reads == ["S1", members_key("S1"), day_key("S1", "2026-03-03"),
                            plan_key("S1", "2026-03-03")]
    assert len(load_store(tables, "S1", make_config()).stockout.contributions) == 3
    # S2 (partition 3) stayed cached
    service.handle_store_batch([as_event(10, 3, demand("S2", "d", {}, 2), service.config)])
    assert "S2" not in tables.reads


def test_a_failed_batch_leaves_no_store_half_applied_in_the_cache(make_config, monkeypatch):
    events = [(1, resupply("S1", "milk", "2026-03-03", 3)),
              (1, demand("S1", "a", {("milk", "2026-03-03"): 2}, 1))]
    service, tables, _ = batched(make_config, events, len(events))
    before = dict(tables.stores)
    calls = []
    handle = service.store_processor.on_store_record

    def fail_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return handle(*args, **kwargs)

    monkeypatch.setattr(service.store_processor, "on_store_record", fail_second)
    batch = [as_event(2, 1, demand("S1", "b", {("milk", "2026-03-03"): 2}, 2), service.config),
             as_event(3, 1, demand("S1", "c", {("milk", "2026-03-03"): 2}, 2), service.config)]
    with pytest.raises(RuntimeError):
        service.handle_store_batch(batch)
    assert len(service.store_cache) == 0 and service.store_cache.dirty_partitions() == []
    assert tables.stores == before  # b's demand never reached the table ...
    monkeypatch.undo()
    result = service.handle_store_batch(batch)  # ... and the batch again applies it once
    # plan 3: a + b = 4 is 1 short, + c 3 short; revision 1 again (the failed try left none)
    assert [a[1:4] for a in alerts_of(result.outputs)] == [
        ("S1:milk:2026-03-03:1", "2026-03-03", 1.0), ("S1:milk:2026-03-03:2", "2026-03-03", 3.0)]
    stockout = load_store(tables, "S1", make_config()).stockout
    assert sorted(stockout.contributions) == ["a", "b", "c"]


def test_a_plan_day_that_expires_and_is_planned_again_in_one_batch_is_kept(make_config):
    """Within a batch the last change of a plan day wins, as when every event writes at once."""
    events = [(1, resupply("S1", "milk", "2026-03-03", 3)),
              (1, demand("S1", "a", {}, 24 * 3)),  # 03-03 expires (before 03-04)
              (1, resupply("S1", "milk", "2026-03-03", 2)),  # a late plan row for it
              (1, resupply("S1", "tea", "2026-03-04", 2)),
              (1, demand("S1", "a", {}, 24 * 4))]  # 03-04 expires, 03-03 too (again)
    for size in (1, 2, 3, 5):
        _, tables, _ = batched(make_config, events[:3], size)
        assert json.loads(tables.stores[plan_key("S1", "2026-03-03")]) == {"milk": 2_000_000}
        _, tables, _ = batched(make_config, events, size)
        assert plan_key("S1", "2026-03-03") not in tables.stores
        assert plan_key("S1", "2026-03-04") not in tables.stores


def test_a_customer_whose_cells_all_expire_is_deleted_with_its_days(make_config):
    events = [(1, resupply("S1", "milk", "2026-03-03", 1)),
              (1, demand("S1", "a", {("milk", "2026-03-03"): 2, ("tea", "2026-03-06"): 1}, 1)),
              (1, demand("S1", "b", {("milk", "2026-03-03"): 2}, 2)),
              (1, demand("S1", "c", {}, 24 * 3))]  # 03-03 expires (before 03-04), with b
    tables = {}
    for size in (1, 2, 4):
        _, found, _ = batched(make_config, events, size)
        tables[size] = found.stores
        assert json.loads(found.stores[members_key("S1")]) == ["a", "c"]
        assert contribution_key("S1", "b") not in found.stores
        assert json.loads(found.stores[contribution_key("S1", "a")])[1] == [
            ["tea", "2026-03-06", 1_000_000]]
        assert sorted(k for k in found.stores if "|day|" in k or "|plan|" in k) == [
            day_key("S1", "2026-03-06")]
    assert tables[1] == tables[2] == tables[4]


def test_the_worker_drops_the_stores_of_store_partitions_it_loses(make_config):
    """What Faust's rebalance signals do to the store cache (the customer side has its own)."""
    import asyncio

    from faust.types import TP

    from lens.topics import POS_TRANSACTIONS

    events = [(p, resupply(f"S{p}", "milk", "2026-03-03", 1)) for p in range(4)]
    service, tables, _ = batched(make_config, events, len(events))
    topic = store_topic_name(service.config)
    assert len(service.store_cache) == 4

    async def rebalance() -> None:
        await service.app.on_partitions_revoked.send({TP(topic, 0), TP(POS_TRANSACTIONS.name, 1)})
        assert len(service.store_cache) == 3
        await service.app.on_partitions_assigned.send({TP(topic, 1), TP(topic, 2)})
        assert len(service.store_cache) == 2

    asyncio.run(rebalance())
    tables.reads.clear()
    assert service.store_cache.get(1, "S1") and service.store_cache.get(3, "S3")
    # partition 1 kept its store, 3 reads it from the table (its head: it has no customer)
    assert tables.reads == ["S3", members_key("S3")]


def test_a_store_of_the_whole_record_layout_loads_and_is_written_in_parts(make_config):
    """A table written before the record was split: {"stockout": the whole state but the plan,
    "watermark": ...} under the store id (the plan was already one day per key)."""
    events = store_events(4, 400)
    head, tail = events[:250], events[250:]
    service, tables, _ = batched(make_config, head, 15)
    config = service.config
    old_layout = DictTables()
    old_layout.stores = {k: v for k, v in tables.stores.items() if "|plan|" in k}
    for store_id in ("S1", "S2"):
        record = load_store(tables, store_id, config)
        whole = record.stockout.to_dict()
        del whole["resupply"]
        whole["planned"] = sorted(record.stockout.planned_days)
        old_layout.stores[store_id] = json.dumps(
            {"stockout": whole, "watermark": record.watermark}).encode()
        assert load_store(old_layout, store_id, config).stockout.to_dict() == \
            record.stockout.to_dict()
    outputs = {}
    for name, table in (("parts", tables), ("old layout", old_layout)):
        outputs[name] = []
        for partition, value in tail:
            try:
                outputs[name] += store_event(service.store_processor, table, value,
                                             partition).outputs
            except Exception:
                continue
    assert alerts_of(outputs["old layout"]) == alerts_of(outputs["parts"])
    assert len(alerts_of(outputs["parts"])) > 3
    for store_id in ("S1", "S2"):
        converted = json.loads(old_layout.stores[store_id])
        assert converted["v"] == 2 and "stockout" not in converted
        assert load_store(old_layout, store_id, config).stockout.to_dict() == \
            load_store(tables, store_id, config).stockout.to_dict()


def test_a_store_head_of_an_unknown_format_is_refused(make_config):
    tables = DictTables()
    tables.stores["S1"] = b'{"v": 3, "watermark": null}'
    with pytest.raises(DataError, match="format 3"):
        load_store(tables, "S1", make_config())
