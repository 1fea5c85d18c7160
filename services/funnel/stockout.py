"""The store-keyed side of the worker: Algorithm 2 (out-of-stock alerts) per store.

Two inputs reach one store's ``StoreStockout`` through the internal topic
``<app_id>-store-events`` (key = store id, partitioned by this worker's own producer, so a store's
demand updates and resupplies always meet on the same partition whatever partitioner the POS and
inventory systems use):

- ``demand`` events: a customer's ``ContributionUpdate`` (its newest prediction's cells, or a
  retraction when its expected store changed), sent by ``FunnelProcessor.on_prediction``;
- ``resupply`` events: ``inventory.resupplies`` records, validated (``validate_resupply``; bad ones
  go to ``lens.dlq``) and re-keyed by ``StoreProcessor.on_resupply``.

``StoreProcessor.on_store_event`` applies them and returns the ``v1.StockoutAlert``s for
``lens.alerts.stockout`` (key = store). A cell alerts once per (whole units short, resupply)
state.

Table layout (``store-stockout``): the store's record under its id, ``{"stockout":
StoreStockout.to_dict(include_plan=False), "watermark": newest as_of}``, and its resupply plan
one day per key, ``plan_key(store, day)`` -> ``{product: micro-units}``: a plan of D days and P
products would otherwise be rewritten, whole, to the changelog with every write of the record
(a 14-day plan of 236 products: 90 KB). Plan keys are written while an event of the store's own
partition is processed, so they live in the store's partition and changelog. Cells and plan
days before the watermark's previous day are expired, so a store's state stays bounded.

Decoded between events (``StoreCache``, the ``services.funnel.tables.DecodedCache`` of the
store agent): the agent takes store events in micro-batches and keeps each store's decoded
``StoreRecord`` (its ``StoreStockout``, watermark, and the plan days read so far: a plan day is
read from the table the first time an event touches it) across events and batches. At the end
of a batch each store that changed is written once (``save_store``): the record, the plan days
that changed and the deletion of those that expired. Decoding and encoding a store's whole
record is proportional to the store (all its customers' cells); an event's own work is
proportional to the cells it touches. A revoked partition's stores are dropped from the cache, a
failed batch drops them all; either way they are read from the table again. One event at a
time (a ``StoreCache`` of capacity 0, flushed after each event) gives the same alerts and the
same table.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from lens import v1
from lens.codec import decode, encode
from lens.errors import DataError
from lens.stockout import ContributionUpdate, StoreStockout
from lens.stream import validate_resupply
from lens.stream.event_time import MICROS_PER_DAY, iso_date
from lens.topics import INVENTORY_RESUPPLIES, STOCKOUT_ALERTS
from services.funnel.config import FunnelServiceConfig
from services.funnel.metrics import FunnelMetrics
from services.funnel.processor import Output, Result, dead_letter, store_topic_name
from services.funnel.tables import DecodedCache

__all__ = [
    "PartitionStores",
    "StoreCache",
    "StoreProcessor",
    "StoreRecord",
    "StoreTables",
    "decode_store_event",
    "encode_resupply_event",
    "load_store",
    "plan_key",
    "save_store",
]

_UNDECODABLE = v1.DeadLetterReason.DEAD_LETTER_REASON_UNDECODABLE


class StoreTables(Protocol):
    def get_store(self, store_id: str) -> bytes | None: ...
    def put_store(self, store_id: str, data: bytes) -> None: ...
    def delete_store(self, store_id: str) -> None: ...


def plan_key(store_id: str, day: str) -> str:
    """The table key of one day of a store's resupply plan ("|" cannot end a store id's day)."""
    return f"{store_id}|plan|{day}"


@dataclass
class StoreRecord:
    """A store's decoded state, and what of its plan is loaded and not yet written."""

    stockout: StoreStockout
    watermark: int | None
    plan_loaded: set[str] = field(default_factory=set)  # planned days whose plan is in stockout
    plan_changed: set[str] = field(default_factory=set)  # plan days to write (save_store)
    plan_expired: set[str] = field(default_factory=set)  # plan days to delete (save_store)

    def load_plan(self, tables: StoreTables, days: Iterable[str]) -> None:
        """Read the stored plan of each planned day in ``days`` not loaded yet."""
        stockout = self.stockout
        for day in sorted(set(days) & (stockout.planned_days - self.plan_loaded)):
            plan = tables.get_store(plan_key(stockout.store_id, day))
            if plan:
                stockout.load_plan_day(day, json.loads(plan))
            self.plan_loaded.add(day)

    def resupplied(self, day: str) -> None:
        """The plan of ``day`` changed."""
        self.plan_loaded.add(day)
        self.plan_changed.add(day)
        self.plan_expired.discard(day)

    def expire_before(self, day: str) -> None:
        """``StoreStockout.expire_before``, and the expired days' plan keys to delete."""
        for expired in self.stockout.expire_before(day):
            self.plan_loaded.discard(expired)
            self.plan_changed.discard(expired)
            self.plan_expired.add(expired)


def load_store(
    tables: StoreTables, store_id: str, config: FunnelServiceConfig,
    plan_days: Iterable[str] | None = None,
) -> StoreRecord | None:
    """A store's state with the plan of ``plan_days`` (None: every planned day) loaded; None for
    a store never seen."""
    data = tables.get_store(store_id)
    if not data:
        return None
    raw = json.loads(data)
    record = StoreRecord(StoreStockout.from_dict(raw["stockout"], config.stockout),
                         raw["watermark"])
    record.load_plan(tables, record.stockout.planned_days if plan_days is None else plan_days)
    return record


def save_store(tables: StoreTables, record: StoreRecord) -> None:
    """Write the store's record, its changed plan days, and delete its expired plan days."""
    stockout = record.stockout
    for day in sorted(record.plan_expired):
        tables.delete_store(plan_key(stockout.store_id, day))
    for day, plan in sorted(stockout.plan_days(record.plan_changed).items()):
        tables.put_store(plan_key(stockout.store_id, day),
                         json.dumps(plan, separators=(",", ":"), sort_keys=True).encode())
    record.plan_changed, record.plan_expired = set(), set()
    tables.put_store(stockout.store_id, json.dumps(
        {"stockout": stockout.to_dict(include_plan=False), "watermark": record.watermark},
        separators=(",", ":"),
    ).encode())


class StoreCache(DecodedCache[StoreRecord]):
    """Decoded ``StoreRecord``s over the ``store-stockout`` table (a record is read with no plan
    day; ``PartitionStores.load_plan`` reads those an event touches); ``partition(p)`` is what
    ``StoreProcessor.on_store_event`` gets for a record of partition ``p``."""

    def __init__(self, tables: StoreTables, config: FunnelServiceConfig, capacity: int) -> None:
        super().__init__(lambda store_id: load_store(tables, store_id, config, ()),
                         lambda _, record: save_store(tables, record), capacity)
        self.tables = tables

    def partition(self, partition: int) -> "PartitionStores":
        return PartitionStores(self, partition)


class PartitionStores:
    """One partition's stores, through the cache."""

    def __init__(self, cache: StoreCache, partition: int) -> None:
        self.cache = cache
        self.number = partition

    def get_record(self, store_id: str) -> StoreRecord | None:
        return self.cache.get(self.number, store_id)

    def put_record(self, record: StoreRecord) -> None:
        self.cache.put(self.number, record.stockout.store_id, record)

    def load_plan(self, record: StoreRecord, days: Iterable[str]) -> None:
        record.load_plan(self.cache.tables, days)


def encode_resupply_event(resupply: v1.Resupply) -> bytes:
    return json.dumps(
        {
            "t": "resupply",
            "store": resupply.store_id,
            "product": resupply.product_id,
            "day": resupply.day,
            "quantity": resupply.quantity,
        },
        separators=(",", ":"),
    ).encode()


def decode_store_event(data: bytes | None) -> ContributionUpdate | v1.Resupply:
    try:
        raw = json.loads(data or b"")
        if raw["t"] == "resupply":
            return v1.Resupply(
                store_id=raw["store"], product_id=raw["product"], day=raw["day"],
                quantity=raw["quantity"],
            )
        if raw["t"] == "demand":
            name, version, label = raw["model"]
            return ContributionUpdate(
                store_id=raw["store"],
                contributor=raw["contributor"],
                cells={(p, d): int(q) for p, d, q in raw["cells"]},
                as_of=int(raw["as_of"]),
                model=(name, int(version), label),
                session_index=int(raw.get("session", 0)),
            )
        raise ValueError(f"unknown store event type {raw['t']!r}")
    # OverflowError: Infinity where an integer belongs; RecursionError: absurdly nested JSON.
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        raise DataError(f"store event is malformed: {exc}") from exc


class StoreProcessor:
    def __init__(self, config: FunnelServiceConfig, metrics: FunnelMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.segments = None
        if config.product_segments_path is not None:
            from lens.segments.segment_map import SegmentMap

            self.segments = SegmentMap.load(config.product_segments_path)

    def on_resupply(
        self, *, partition: int, offset: int, key: bytes | None, value: bytes | None, now_us: int
    ) -> Result:
        """Validate an ``inventory.resupplies`` record and re-key it onto the store topic."""

        def reject(reason: int, detail: str) -> Result:
            if self.metrics is not None:
                self.metrics.resupplies.labels("dead_lettered").inc()
                reason_name = v1.DeadLetterReason.Name(reason).removeprefix("DEAD_LETTER_REASON_")
                self.metrics.dead_letters.labels(
                    INVENTORY_RESUPPLIES.name, reason_name.lower()
                ).inc()
            return Result([dead_letter(
                topic=INVENTORY_RESUPPLIES.name, partition=partition, offset=offset, key=key,
                value=value, reason=reason, detail=detail, now_us=now_us,
                service=self.config.service_name,
            )], "dead_lettered")

        try:
            resupply = decode(v1.Resupply, value)
        except DataError as exc:
            return reject(_UNDECODABLE, str(exc))
        problem = validate_resupply(resupply, self.config.validation)
        if problem is not None:
            return reject(*problem)
        if self.metrics is not None:
            self.metrics.resupplies.labels("processed").inc()
        topic = store_topic_name(self.config)
        return Result(
            [Output(topic, resupply.store_id.encode(), encode_resupply_event(resupply))],
            "processed",
        )

    def on_store_record(
        self, stores: PartitionStores, *, partition: int, offset: int, key: bytes | None,
        value: bytes | None, now_us: int,
    ) -> Result:
        """``on_store_event`` for one record of the store topic; a malformed one (only a foreign
        producer can write it) goes to ``lens.dlq`` instead of stopping the agent."""
        try:
            return self.on_store_event(stores, value)
        except DataError as exc:
            topic = store_topic_name(self.config)
            if self.metrics is not None:
                self.metrics.dead_letters.labels(topic, "undecodable").inc()
            return Result([dead_letter(
                topic=topic, partition=partition, offset=offset, key=key, value=value,
                reason=_UNDECODABLE, detail=str(exc), now_us=now_us,
                service=self.config.service_name,
            )])

    def on_store_event(self, stores: PartitionStores, value: bytes | None) -> Result:
        """Apply one store event to its store (through ``stores``, which writes it back at the
        end of the batch); the alerts it raised."""
        event = decode_store_event(value)
        store_id = event.store_id
        record = stores.get_record(store_id)
        if record is None:
            record = StoreRecord(StoreStockout(store_id, self.config.stockout), None)
        stockout = record.stockout
        if isinstance(event, ContributionUpdate):
            days = {day for _, day in event.cells}
            old = stockout.contributions.get(event.contributor)
            if old is not None:  # the cells it replaces are checked against their plan too
                days |= {d for _, d in old.cells}
            stores.load_plan(record, days)
            alerts = stockout.apply(event)
            if record.watermark is None or event.as_of > record.watermark:
                record.watermark = event.as_of
                # Bound the state: forget cells of days before yesterday (event time of the
                # newest prediction seen for the store).
                record.expire_before(iso_date(record.watermark - MICROS_PER_DAY))
        else:
            stores.load_plan(record, {event.day})
            alerts = stockout.on_resupply(event)
            record.resupplied(event.day)
        stores.put_record(record)
        if self.segments is not None:
            for alert in alerts:
                segment = self.segments.product_segment(alert.product_id)
                if segment is not None:
                    alert.product_segment = segment
        if self.metrics is not None and alerts:
            self.metrics.alerts.labels("stockout").inc(len(alerts))
        key = store_id.encode()
        return Result([Output(STOCKOUT_ALERTS.name, key, encode(a)) for a in alerts])
