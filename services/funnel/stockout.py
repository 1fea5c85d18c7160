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
one day per key, ``plan_key(store, day)`` -> ``{product: micro-units}``. An event reads and
writes the record plus only the plan days it touches: a plan of D days and P products would
otherwise be rewritten, whole, to the changelog by each of its D x P resupply rows (a 14-day plan
of 236 products: 90 KB per event, 3,000 events per store). Plan keys are written while the
store's own event is processed, so they live in the store's partition and changelog. Cells and
plan days before the watermark's previous day are expired, so a store's state stays bounded.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
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

__all__ = [
    "StoreProcessor",
    "StoreRecord",
    "StoreTables",
    "decode_store_event",
    "encode_resupply_event",
    "load_store",
    "plan_key",
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
    stockout: StoreStockout
    watermark: int | None


def load_store(
    tables: StoreTables, store_id: str, config: FunnelServiceConfig,
    plan_days: Iterable[str] | None = None,
) -> StoreRecord | None:
    """A store's state with the plan of ``plan_days`` (None: every planned day) loaded; None for
    a store never seen."""
    data = tables.get_store(store_id)
    if not data:
        return None
    record = json.loads(data)
    stockout = StoreStockout.from_dict(record["stockout"], config.stockout)
    load_plan_days(tables, stockout,
                   stockout.planned_days if plan_days is None else set(plan_days))
    return StoreRecord(stockout, record["watermark"])


def load_plan_days(tables: StoreTables, stockout: StoreStockout, days: Iterable[str]) -> None:
    """Read the stored plan of each planned day in ``days`` into ``stockout``."""
    for day in sorted(set(days) & stockout.planned_days):
        plan = tables.get_store(plan_key(stockout.store_id, day))
        if plan:
            stockout.load_plan_day(day, json.loads(plan))


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
        self, tables: StoreTables, *, partition: int, offset: int, key: bytes | None,
        value: bytes | None, now_us: int,
    ) -> Result:
        """``on_store_event`` for one record of the store topic; a malformed one (only a foreign
        producer can write it) goes to ``lens.dlq`` instead of stopping the agent."""
        try:
            return self.on_store_event(tables, value)
        except DataError as exc:
            topic = store_topic_name(self.config)
            if self.metrics is not None:
                self.metrics.dead_letters.labels(topic, "undecodable").inc()
            return Result([dead_letter(
                topic=topic, partition=partition, offset=offset, key=key, value=value,
                reason=_UNDECODABLE, detail=str(exc), now_us=now_us,
                service=self.config.service_name,
            )])

    def on_store_event(self, tables: StoreTables, value: bytes | None) -> Result:
        event = decode_store_event(value)
        store_id = event.store_id
        if isinstance(event, ContributionUpdate):
            days = {day for _, day in event.cells}
        else:
            days = {event.day}
        record = load_store(tables, store_id, self.config, days)
        if record is None:
            record = StoreRecord(StoreStockout(store_id, self.config.stockout), None)
        stockout = record.stockout
        if isinstance(event, ContributionUpdate):
            old = stockout.contributions.get(event.contributor)
            if old is not None:  # the cells it replaces are checked against their plan too
                load_plan_days(tables, stockout, {d for _, d in old.cells} - days)
            alerts = stockout.apply(event)
            if record.watermark is None or event.as_of > record.watermark:
                record.watermark = event.as_of
                # Bound the state: forget cells of days before yesterday (event time of the
                # newest prediction seen for the store).
                planned = set(stockout.planned_days)
                stockout.expire_before(iso_date(record.watermark - MICROS_PER_DAY))
                for day in planned - stockout.planned_days:
                    tables.delete_store(plan_key(store_id, day))
        else:
            alerts = stockout.on_resupply(event)
            tables.put_store(plan_key(store_id, event.day), json.dumps(
                stockout.plan_day(event.day), separators=(",", ":"), sort_keys=True).encode())
        tables.put_store(store_id, json.dumps(
            {"stockout": stockout.to_dict(include_plan=False), "watermark": record.watermark},
            separators=(",", ":"),
        ).encode())
        if self.segments is not None:
            for alert in alerts:
                segment = self.segments.product_segment(alert.product_id)
                if segment is not None:
                    alert.product_segment = segment
        if self.metrics is not None and alerts:
            self.metrics.alerts.labels("stockout").inc(len(alerts))
        key = store_id.encode()
        return Result([Output(STOCKOUT_ALERTS.name, key, encode(a)) for a in alerts])
