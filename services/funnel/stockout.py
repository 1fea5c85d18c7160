"""The store-keyed side of the worker: Algorithm 2 (out-of-stock alerts) per store.

Two inputs reach one store's ``StoreStockout`` through the internal topic
``<app_id>-store-events`` (key = store id, partitioned by this worker's own producer, so a store's
demand updates and resupplies always meet on the same partition whatever partitioner the POS and
inventory systems use):

- ``demand`` events: a customer's ``ContributionUpdate`` (its newest prediction's cells, or a
  retraction when its expected store changed), made by ``FunnelProcessor.on_prediction``; a
  funnel batch sends a store its demand events in one record
  (``services.funnel.processor.merge_store_events``, read back by ``decode_store_events``);
- ``resupply`` events: ``inventory.resupplies`` records, validated (``validate_resupply``; bad ones
  go to ``lens.dlq``) and re-keyed by ``StoreProcessor.on_resupply``.

``StoreProcessor.on_store_event`` applies them and returns the ``v1.StockoutAlert``s for
``lens.alerts.stockout`` (key = store). A cell alerts once per (whole units short, resupply)
state.

Table layout (``store-stockout``): a store is kept in parts, so that a batch writes the parts it
changed rather than the whole store (encoding a store's whole state on every write was nearly
all of the agent's time). Keys are the store id, or the store id then "|"-separated fields:

- ``store_id``: the head, ``{"v": 2, "watermark": newest as_of, "horizon": no state of a day
  before it, "planned": [days], "days": [days with a day key]}`` (~40 bytes + 13 per day);
- ``members_key(store)`` -> ``[contributor, ...]`` (~len + 3 bytes each; written when a
  contributor comes or goes, not with every update);
- ``contribution_key(store, contributor)`` -> ``[as_of, [[product, day, micro-units], ...]]``
  (``StoreStockout.contribution_row``: ~20 bytes + 30 per cell);
- ``day_key(store, day)`` -> the cell state of the day, ``[[product, demand, source, alerted,
  revisions], ...]`` (``StoreStockout.day_rows``: ~55 bytes per cell);
- ``plan_key(store, day)`` -> ``{product: micro-units}``, the day's resupply plan (~17 bytes per
  product; a 14-day plan of 236 products in one value would be 90 KB).

An update of one contributor writes its key, the day keys of its old and new cells and the head
(when it changed: the watermark moved);
a resupply its plan day (and its day key, when its alert state moved). Expiry deletes the keys of
the days before the watermark's previous day and of contributors left without cells (a store's
state stays bounded), and rewrites the contributors that lost cells. Every key is written while
an event of the store's own partition is processed, so it lives in the store's partition and
changelog. A store never seen has no head. A head of the whole-store layout that came before
(``{"stockout": StoreStockout.to_dict() without the plan, "watermark": ...}``, the plan already
one day per key) still loads, whole, and the store's next write replaces it with its parts; a
head of any other format is refused (``DataError``).

Decoded between events (``StoreCache``, the ``services.funnel.tables.DecodedCache`` of the
store agent): the agent takes store events in micro-batches and keeps each store's decoded
``StoreRecord`` across events and batches. A store is read with its head and list of
contributors only; an event reads the parts it touches the first time (its contributor, the days
of its cells with their plan), and expiry reads every contributor not read yet (once per day per
store: any may hold a cell of an expired day). At the end of a batch each store that changed is
written once (``save_store``): its changed parts and the deletion of the expired ones. A day key
holds all of the day's cells, so the record also keeps each written day's rows encoded and
re-encodes only the cells that changed (memory: about the bytes of the store's day keys). A
revoked partition's stores are dropped from the cache, a failed batch drops them all; either way
they are read from the table again. One event at a time (a ``StoreCache`` of capacity 0, flushed
after each event) gives the same alerts and the same table.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    "contribution_key",
    "day_key",
    "decode_store_events",
    "encode_resupply_event",
    "load_store",
    "members_key",
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


def day_key(store_id: str, day: str) -> str:
    """The table key of the cell state (demand, sources, alert memory) of one day of a store."""
    return f"{store_id}|day|{day}"


def contribution_key(store_id: str, contributor: str) -> str:
    """The table key of one contributor's cells in a store."""
    return f"{store_id}|contributor|{contributor}"


def members_key(store_id: str) -> str:
    """The table key of the list of a store's contributors."""
    return f"{store_id}|contributors"


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class StoreRecord:
    """A store's decoded state (the parts loaded so far), and which parts to write
    (``save_store``)."""

    stockout: StoreStockout
    watermark: int | None
    contributors: set[str] = field(default_factory=set)  # all of the store's, loaded or not
    days: set[str] = field(default_factory=set)  # days whose cell state is in the table
    loaded: set[str] = field(default_factory=set)  # stored contributors read into stockout
    days_loaded: set[str] = field(default_factory=set)  # days whose cell state is in stockout
    plan_loaded: set[str] = field(default_factory=set)  # planned days whose plan is in stockout
    changed: set[str] = field(default_factory=set)  # contributors to write or delete
    members_changed: bool = False  # the set of contributors, to write
    # day -> products whose cell state changed (None: any of the day's), to write or delete
    cells_changed: dict[str, set[str] | None] = field(default_factory=dict)
    # day -> product -> the cell's encoded row as last written: a day written again encodes
    # only its changed cells (a day's key holds all of them)
    encoded: dict[str, dict[str, bytes]] = field(default_factory=dict)
    plan_changed: set[str] = field(default_factory=set)  # plan days to write
    plan_expired: set[str] = field(default_factory=set)  # plan days to delete
    head: bytes = b""  # the head record as the table has it

    def load_contribution(self, tables: StoreTables, contributor: str) -> None:
        """Read a stored contributor not read yet (a new one has nothing to read)."""
        if contributor in self.contributors and contributor not in self.loaded:
            data = tables.get_store(contribution_key(self.stockout.store_id, contributor))
            if data:
                self.stockout.load_contribution(contributor, json.loads(data))
            self.loaded.add(contributor)

    def load_days(self, tables: StoreTables, days: Iterable[str]) -> None:
        """Read the stored cell state and plan of each of ``days`` not read yet."""
        stockout = self.stockout
        days = set(days)
        for day in sorted(days & self.days - self.days_loaded):
            data = tables.get_store(day_key(stockout.store_id, day))
            if data:
                stockout.load_day(day, json.loads(data))
        self.days_loaded |= days
        for day in sorted(days & (stockout.planned_days - self.plan_loaded)):
            plan = tables.get_store(plan_key(stockout.store_id, day))
            if plan:
                stockout.load_plan_day(day, json.loads(plan))
            self.plan_loaded.add(day)

    def touched(self, day: str, products: Iterable[str] | None) -> None:
        """The state of these cells of ``day`` changed (None: maybe any of the day's)."""
        if products is None or self.cells_changed.get(day, ()) is None:
            self.cells_changed[day] = None
        else:
            self.cells_changed.setdefault(day, set()).update(products)

    def contributed(self, contributor: str, cells: Iterable[tuple[str, str]]) -> None:
        """``contributor``'s update was applied; ``cells``: its old and new ones."""
        self.loaded.add(contributor)
        self.changed.add(contributor)
        if contributor not in self.contributors:
            self.contributors.add(contributor)
            self.members_changed = True
        for product, day in cells:
            self.touched(day, (product,))

    def resupplied(self, day: str) -> None:
        """The plan of ``day`` changed."""
        self.plan_loaded.add(day)
        self.plan_changed.add(day)
        self.plan_expired.discard(day)

    def expire_before(self, tables: StoreTables, day: str) -> None:
        """``StoreStockout.expire_before``, and the parts it changes or empties to write."""
        stockout = self.stockout
        if day <= stockout.horizon:
            return  # nothing that old, loaded or not: no contributor to read
        # any contributor may have a cell of an expired day
        for contributor in sorted(self.contributors - self.loaded):
            self.load_contribution(tables, contributor)
        cells = {c: len(entry.cells) for c, entry in stockout.contributions.items()}
        for expired in stockout.expire_before(day):
            self.plan_loaded.discard(expired)
            self.plan_changed.discard(expired)
            self.plan_expired.add(expired)
        for contributor, count in cells.items():
            entry = stockout.contributions.get(contributor)
            if entry is None or len(entry.cells) != count:
                self.changed.add(contributor)
        if len(stockout.contributions) != len(cells):
            self.contributors = set(stockout.contributions)
            self.members_changed = True
        # the expired days are empty in stockout now, stored or not: nothing left to read
        for expired in [d for d in {*self.days, *self.cells_changed, *self.encoded} if d < day]:
            self.days_loaded.add(expired)
            self.encoded.pop(expired, None)
            self.touched(expired, None)


def load_store(
    tables: StoreTables, store_id: str, config: FunnelServiceConfig, whole: bool = True,
) -> StoreRecord | None:
    """A store's state, every part loaded (``whole=False``: only the head and the list of
    contributors, the rest read as events touch it); None for a store never seen. A record of
    the whole-store layout (``{"stockout": ..., "watermark": ...}``) loads whole and is marked
    to be written in parts."""
    data = tables.get_store(store_id)
    if not data:
        return None
    raw = json.loads(data)
    if "stockout" in raw:
        stockout = StoreStockout.from_dict(raw["stockout"], config.stockout)
        everyone = set(stockout.contributions)
        record = StoreRecord(stockout, raw["watermark"], contributors=everyone,
                             loaded=set(everyone), changed=set(everyone), members_changed=True,
                             cells_changed=dict.fromkeys(stockout.cell_days()), head=data)
    elif raw.get("v") == 2:
        members = tables.get_store(members_key(store_id))
        record = StoreRecord(
            StoreStockout.in_parts(store_id, config.stockout, raw["planned"], raw["horizon"]),
            raw["watermark"], contributors=set(json.loads(members)) if members else set(),
            days=set(raw["days"]), head=data)
    else:
        raise DataError(f"store record format {raw.get('v')!r} of {store_id!r} is not 2")
    if whole:
        for contributor in sorted(record.contributors):
            record.load_contribution(tables, contributor)
        record.load_days(tables, record.days | record.stockout.planned_days)
    return record


def save_store(tables: StoreTables, record: StoreRecord) -> None:
    """Write the store's changed parts, delete those expired or emptied, and write its head if
    it changed."""
    stockout = record.stockout
    store_id = stockout.store_id
    for day in sorted(record.plan_expired):
        tables.delete_store(plan_key(store_id, day))
    for day, plan in sorted(stockout.plan_days(record.plan_changed).items()):
        tables.put_store(plan_key(store_id, day),
                         json.dumps(plan, separators=(",", ":"), sort_keys=True).encode())
    for contributor in sorted(record.changed):
        key = contribution_key(store_id, contributor)
        if contributor in stockout.contributions:
            tables.put_store(key, _dump(stockout.contribution_row(contributor)))
        else:
            tables.delete_store(key)
    if record.members_changed:
        if record.contributors:
            tables.put_store(members_key(store_id), _dump(sorted(record.contributors)))
        else:
            tables.delete_store(members_key(store_id))
    for day, products in sorted(record.cells_changed.items()):
        rows = record.encoded.get(day)
        if rows is None or products is None:
            rows = record.encoded[day] = {row[0]: _dump(row) for row in stockout.day_rows(day)}
        else:
            for product in products:
                row = stockout.cell_row(product, day)
                if row is None:
                    rows.pop(product, None)
                else:
                    rows[product] = _dump(row)
        if rows:  # _dump(stockout.day_rows(day)), from the rows encoded
            tables.put_store(day_key(store_id, day),
                             b"[" + b",".join(map(rows.__getitem__, sorted(rows))) + b"]")
            record.days.add(day)
        elif day in record.days:
            tables.delete_store(day_key(store_id, day))
            record.days.discard(day)
    head = _dump({"v": 2, "watermark": record.watermark, "horizon": stockout.horizon,
                  "planned": sorted(stockout.planned_days), "days": sorted(record.days)})
    if head != record.head:
        tables.put_store(store_id, head)
        record.head = head
    record.changed, record.members_changed, record.cells_changed = set(), False, {}
    record.plan_changed, record.plan_expired = set(), set()


class StoreCache(DecodedCache[StoreRecord]):
    """Decoded ``StoreRecord``s over the ``store-stockout`` table (a record is read with its
    head and list of contributors only; ``on_store_event`` reads the parts an event touches
    through ``PartitionStores.tables``); ``partition(p)`` is what
    ``StoreProcessor.on_store_event`` gets for a record of partition ``p``."""

    def __init__(self, tables: StoreTables, config: FunnelServiceConfig, capacity: int) -> None:
        super().__init__(lambda store_id: load_store(tables, store_id, config, whole=False),
                         lambda _, record: save_store(tables, record), capacity)
        self.tables = tables

    def partition(self, partition: int) -> "PartitionStores":
        return PartitionStores(self, partition)


class PartitionStores:
    """One partition's stores, through the cache."""

    def __init__(self, cache: StoreCache, partition: int) -> None:
        self.cache = cache
        self.number = partition
        self.tables = cache.tables

    def get_record(self, store_id: str) -> StoreRecord | None:
        return self.cache.get(self.number, store_id)

    def put_record(self, record: StoreRecord) -> None:
        self.cache.put(self.number, record.stockout.store_id, record)


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


def decode_store_events(data: bytes | None) -> list[ContributionUpdate | v1.Resupply]:
    """The events of one store-topic record: a resupply, a demand update, or the demand updates
    a funnel batch sent one store together (``services.funnel.processor.merge_store_events``);
    DataError when any of them is malformed."""
    try:
        raw = json.loads(data or b"")
        if raw["t"] == "demands":
            return [_store_event(event) for event in raw["events"]]
        return [_store_event(raw)]
    # OverflowError: Infinity where an integer belongs; RecursionError: absurdly nested JSON.
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        raise DataError(f"store event is malformed: {exc}") from exc


def _store_event(raw: Any) -> ContributionUpdate | v1.Resupply:
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
        """Apply the events of one store-topic record (``decode_store_events``: all of them are
        decoded before any is applied) to their store, through ``stores``, which writes it back
        at the end of the batch; the alerts they raised."""
        result = Result()
        for event in decode_store_events(value):
            result.outputs += self._apply(stores, event)
        return result

    def _apply(
        self, stores: PartitionStores, event: ContributionUpdate | v1.Resupply
    ) -> list[Output]:
        store_id = event.store_id
        record = stores.get_record(store_id)
        if record is None:
            record = StoreRecord(StoreStockout(store_id, self.config.stockout), None)
        stockout = record.stockout
        if isinstance(event, ContributionUpdate):
            record.load_contribution(stores.tables, event.contributor)
            cells = set(event.cells)
            old = stockout.contributions.get(event.contributor)
            if old is not None:  # the cells it replaces are checked against their plan too
                cells.update(old.cells)
            record.load_days(stores.tables, {day for _, day in cells})
            alerts = stockout.apply(event)
            if stockout.contributions.get(event.contributor) is not old:  # not an older one
                record.contributed(event.contributor, cells)
            if record.watermark is None or event.as_of > record.watermark:
                record.watermark = event.as_of
                # Bound the state: forget cells of days before yesterday (event time of the
                # newest prediction seen for the store).
                record.expire_before(stores.tables, iso_date(record.watermark - MICROS_PER_DAY))
        else:
            record.load_days(stores.tables, {event.day})
            # a planned day's row checks its own cell only; a day's first row checks them all
            cell = (event.product_id, event.day)
            planned, state = event.day in stockout.planned_days, stockout.alerted.get(cell)
            alerts = stockout.on_resupply(event)
            if not planned:
                record.touched(event.day, None)
            elif stockout.alerted.get(cell) != state:  # its revisions moved with it
                record.touched(event.day, (event.product_id,))
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
        return [Output(STOCKOUT_ALERTS.name, key, encode(a)) for a in alerts]
