"""FunnelProcessor: what the funnel-state worker does with one record, without Kafka or Faust.

The Faust agents in ``services.funnel.app`` are thin: they hand each record's raw key and value,
source partition and offset to this class together with the partition's table views, and send
the ``Output``s it returns. Everything here is deterministic given its inputs (event time from
the records, processing time passed in as ``now_us``), so unit tests drive it with dicts.

Per ``pos.transactions`` record, exactly one outcome (``lens_funnel_records_total{outcome}``):

- ``dead_lettered``: undecodable bytes, a record ``lens.stream.Validator`` rejects, or a line the
  sessionizer calls late -> ``v1.DeadLetter`` on ``lens.dlq`` with the original key and bytes;
- ``duplicate``: a resent line (same transaction and line number) -> ignored;
- ``processed``: everything else; each session it closes goes to ``lens.sessions``, is scored
  against the customer's previous prediction (``AnomalyDetector``, Algorithm 1) and queues the
  customer for a prediction. A BasketClosed for a basket already closed sends its session again
  (a replay after a crash, see ``FunnelProcessor._resend``).

Delivery (at-least-once, the worker's Faust default). The customer's state is exactly-once: a
record replayed after a crash finds its line or close already in the state and changes nothing,
so every basket is one session in the stats and one ``session_index``. Output records are
at-least-once: a replay can send a session again (identical bytes, same customer_id and
session_index); readers dedupe by that pair.

Quiet streams (processing-time fallback). Sessions close on event time: a basket closes when a
later event of its customer, or the partition's event-time watermark (the latest event time seen
on the partition), is more than the inactivity timeout past its last line. ``on_sweep`` runs that
check for every open basket of one partition; the worker's Faust timer (``app.timer``) triggers it
every ``sweep_interval_s``. When a partition got no record for ``quiet_after_s`` of processing
time, its watermark is advanced by the processing time elapsed since its last record, so that
baskets in a stream that went quiet still close. Replays that keep records flowing never hit the
fallback and close exactly the sessions a batch replay would; a replay that pauses longer than
``quiet_after_s`` may close baskets earlier than event time alone would (the documented trade of
determinism for latency).

Predictions are asynchronous: a customer whose session closed is *pending*; the worker's
predictor calls the model server and publishes a ``v1.Prediction`` to ``lens.predictions`` on the
customer's partition. Once it is on the broker this processor applies it (``on_prediction``, the
record's bytes as sent, in the funnel agent's next batch of the partition): it becomes
``FunnelState.last_prediction`` (what Algorithm 1 compares the next session with) and its demand
cells go to the store-keyed stock-out aggregation (Algorithm 2) as ``ContributionUpdate``s. State
never waits for the model: when the server is down the customer stays pending and the sweep asks
again later.
"""

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from lens import v1
from lens.anomaly import AnomalyDetector
from lens.codec import decode, encode
from lens.errors import DataError
from lens.stockout import ContributionUpdate, contribution_updates
from lens.stream import FunnelState, Sessionizer, Validator, validate_prediction
from lens.stream.event_time import MICROS_PER_SECOND, from_timestamp, to_timestamp
from lens.topics import ANOMALY_ALERTS, DEAD_LETTERS, POS_TRANSACTIONS, PREDICTIONS, SESSIONS
from services.funnel.config import FunnelServiceConfig
from services.funnel.metrics import FunnelMetrics

if TYPE_CHECKING:
    from services.funnel.canary import CanaryGuard

__all__ = [
    "FunnelProcessor",
    "FunnelTables",
    "Output",
    "PartitionMeta",
    "Result",
    "dead_letter",
    "encode_store_event",
    "merge_store_events",
    "store_topic_name",
]

_REASONS = v1.DeadLetterReason
_LATE = _REASONS.DEAD_LETTER_REASON_LATE


@dataclass(frozen=True)
class Output:
    """One record to send: ``partition`` None = the producer's partitioner picks (by key)."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


@dataclass
class Result:
    outputs: list[Output] = field(default_factory=list)
    outcome: str | None = None  # pos records: processed / dead_lettered / duplicate
    predict: list[FunnelState] = field(default_factory=list)  # snapshots to ask the model about


class FunnelTables(Protocol):
    """The worker's tables as the processor sees them, for the current partition only."""

    def get_state(self, customer_id: str) -> FunnelState | None: ...
    def put_state(self, state: FunnelState) -> None: ...
    def get_meta(self, partition: int) -> bytes | None: ...
    def put_meta(self, partition: int, data: bytes) -> None: ...


@dataclass
class PartitionMeta:
    """What one partition keeps besides its customers: the customers with an open basket (the
    sweep visits only those), the customers waiting for a prediction, the event-time watermark
    with the processing time of the partition's last record, and Algorithm 1's dA windows.

    Saved to the partition table on each sweep when it changed (not per record): after a crash
    it can lag by one sweep interval; a basket missing from ``open`` then closes on its
    customer's next event instead of by the sweep."""

    open: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    watermark: int | None = None  # event time, microseconds
    last_record_wall: int | None = None  # processing time, microseconds
    detector: AnomalyDetector = field(default_factory=AnomalyDetector)
    dirty: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "v": 1,
                "open": sorted(self.open),
                "pending": sorted(self.pending),
                "wm": self.watermark,
                "wall": self.last_record_wall,
                "anomaly": self.detector.to_dict(),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, config: FunnelServiceConfig) -> "PartitionMeta":
        try:
            raw = json.loads(data)
            if raw.get("v") != 1:
                raise ValueError(f"format {raw.get('v')!r} is not 1")
            return cls(
                open=set(raw["open"]),
                pending=set(raw["pending"]),
                watermark=raw["wm"],
                last_record_wall=raw["wall"],
                detector=AnomalyDetector.from_dict(raw["anomaly"], config.anomaly),
            )
        except (ValueError, KeyError, TypeError, DataError) as exc:
            raise DataError(f"funnel partition record is malformed ({exc}); rebuild the table") from exc


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: int,
    detail: str,
    now_us: int,
    service: str,
) -> Output:
    letter = v1.DeadLetter(
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason,
        detail=detail,
        original_key=key or b"",
        original_value=value or b"",
        dead_lettered_at=to_timestamp(now_us),
        service=service,
    )
    return Output(DEAD_LETTERS.name, key, encode(letter))


def encode_store_event(update: ContributionUpdate) -> bytes:
    """A ContributionUpdate as the JSON value of the store-keyed demand topic (key = store)."""
    return json.dumps(
        {
            "t": "demand",
            "store": update.store_id,
            "contributor": update.contributor,
            "cells": sorted([p, d, q] for (p, d), q in update.cells.items()),
            "as_of": update.as_of,
            "model": list(update.model),
            "session": update.session_index,
        },
        separators=(",", ":"),
    ).encode()


def merge_store_events(outputs: list[Output], topic: str) -> list[Output]:
    """``outputs`` with the demand updates on the store topic ``topic`` sent as one record per
    store (its key): a funnel batch of predictions brings each store many updates, and a record
    costs the producer, the broker and the store agent about as much as the update in it. Each
    update keeps its bytes and its place among its store's (``decode_store_events`` reads
    them back in order); the other outputs keep their order, before the store records."""
    by_store: dict[bytes | None, list[bytes]] = {}
    others = []
    for out in outputs:
        if out.topic == topic:
            by_store.setdefault(out.key, []).append(out.value)
        else:
            others.append(out)
    return others + [
        Output(topic, key, values[0] if len(values) == 1
               else b'{"t":"demands","events":[' + b",".join(values) + b"]}")
        for key, values in by_store.items()
    ]


def _reason_name(reason: int) -> str:
    return _REASONS.Name(reason).removeprefix("DEAD_LETTER_REASON_").lower()


def _close_reason_name(reason: int) -> str:
    return v1.CloseReason.Name(reason).removeprefix("CLOSE_REASON_").lower()


class FunnelProcessor:
    """Record handlers of the customer-keyed side of the worker (see the module docstring)."""

    def __init__(
        self,
        config: FunnelServiceConfig,
        metrics: FunnelMetrics | None = None,
        *,
        predicting: bool = True,
        canary_guard: "CanaryGuard | None" = None,
    ) -> None:
        """``predicting``: whether closed sessions queue their customer for a prediction (False
        when the worker runs without a model server: nothing would ever clear the queue).
        ``canary_guard``: gets every prediction checked against the session that follows it."""
        self.config = config
        self.metrics = metrics
        self.predicting = predicting
        self.canary_guard = canary_guard
        self.sessionizer = Sessionizer(config.sessionizer)
        self.validator = Validator(config.validation)
        self.metas: dict[int, PartitionMeta] = {}

    # -- partition bookkeeping -----------------------------------------------------------------

    def meta(self, tables: FunnelTables, partition: int) -> PartitionMeta:
        found = self.metas.get(partition)
        if found is None:
            data = tables.get_meta(partition)
            if data:
                found = PartitionMeta.from_bytes(data, self.config)
            else:
                found = PartitionMeta(detector=AnomalyDetector(self.config.anomaly))
            self.metas[partition] = found
            self._update_gauges()
        return found

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: drop their in-memory records (reloaded from the table if they come
        back)."""
        for partition in partitions:
            self.metas.pop(partition, None)
        self._update_gauges()

    def _update_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.open_baskets.set(sum(len(m.open) for m in self.metas.values()))
            self.metrics.predictions_pending.set(sum(len(m.pending) for m in self.metas.values()))

    # -- pos.transactions ------------------------------------------------------------------------

    def on_pos(
        self,
        tables: FunnelTables,
        *,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        now_us: int,
        backfill: bool = False,
    ) -> Result:
        """``backfill``: the record carries history (``lens backfill``, see
        ``services.funnel.backfill``): the sessions it closes are backfilled."""
        meta = self.meta(tables, partition)
        meta.last_record_wall = now_us
        meta.dirty = True

        def reject(reason: int, detail: str) -> Result:
            if self.metrics is not None:
                self.metrics.records.labels("dead_lettered").inc()
                self.metrics.dead_letters.labels(POS_TRANSACTIONS.name, _reason_name(reason)).inc()
            letter = dead_letter(
                topic=POS_TRANSACTIONS.name, partition=partition, offset=offset, key=key,
                value=value, reason=reason, detail=detail, now_us=now_us,
                service=self.config.service_name,
            )
            return Result([letter], "dead_lettered")

        try:
            event = decode(v1.PosEvent, value)
        except DataError as exc:
            return reject(_REASONS.DEAD_LETTER_REASON_UNDECODABLE, str(exc))
        problem = self.validator.check(event, now=now_us)
        if problem is not None:
            return reject(*problem)
        body = getattr(event, event.WhichOneof("event"))
        t = from_timestamp(body.timestamp)
        if meta.watermark is None or t > meta.watermark:
            meta.watermark = t
        state = tables.get_state(body.customer_id) or self.sessionizer.new_state(body.customer_id)
        basket = state.open_basket
        if (event.WhichOneof("event") == "line" and basket is not None
                and basket.transaction_id == body.transaction_id
                and body.line_no not in basket.line_nos
                and len(basket.line_nos) >= self.config.validation.max_basket_lines):
            return reject(_REASONS.DEAD_LETTER_REASON_BASKET_TOO_LARGE,
                          f"basket {body.transaction_id!r} already holds "
                          f"{len(basket.line_nos)} lines (max_basket_lines)")
        step = self.sessionizer.on_event(state, event)
        if backfill:
            _mark_backfilled(state, step.sessions)
        result = Result()
        self._closed(state, step.sessions, meta, partition, result)
        if step.outcome.value == "close_ignored":
            self._resend(state, body.transaction_id, meta, partition, result)
        self._track(state, meta)
        tables.put_state(state)
        if step.outcome.value == "duplicate":
            if self.metrics is not None:
                self.metrics.records.labels("duplicate").inc()
                self.metrics.duplicates.inc()
            result.outcome = "duplicate"
            return result
        if step.outcome.value == "late":
            rejected = reject(_LATE, f"late: {step.detail}")
            rejected.outputs[:0] = result.outputs  # sessions an idle close emitted come first
            rejected.predict = result.predict
            return rejected
        if self.metrics is not None:
            self.metrics.records.labels("processed").inc()
        result.outcome = "processed"
        return result

    # -- lens.predictions (our own output, applied once it is on the broker) --------------------

    def on_prediction(
        self, tables: FunnelTables, *, partition: int, offset: int, key: bytes | None,
        value: bytes | None, now_us: int, cluster: int | None = None,
    ) -> Result:
        """``cluster``: the customer's behaviour cluster the predictor assigned with this
        prediction (record header ``lens-cluster``); None keeps the state's."""
        meta = self.meta(tables, partition)

        def reject(reason: int, detail: str) -> Result:
            if self.metrics is not None:
                self.metrics.dead_letters.labels(PREDICTIONS.name, _reason_name(reason)).inc()
            return Result([dead_letter(
                topic=PREDICTIONS.name, partition=partition, offset=offset, key=key, value=value,
                reason=reason, detail=detail, now_us=now_us, service=self.config.service_name,
            )])

        try:
            prediction = decode(v1.Prediction, value)
        except DataError as exc:
            return reject(_REASONS.DEAD_LETTER_REASON_UNDECODABLE, str(exc))
        # A broken model (NaN, inf) must not reach the state or demand.
        problem = validate_prediction(prediction, self.config.validation)
        if problem is not None:
            return reject(*problem)
        state = tables.get_state(prediction.customer_id)
        if state is None:
            return Result()
        previous = state.last_prediction
        if previous is not None and prediction.session_index < previous.session_index:
            return Result()  # stale: a newer prediction is in force
        # A prediction of the latest session ends the wait, also when it arrives again: a pending
        # mark left by a lost first application would otherwise re-predict the customer forever.
        if prediction.session_index >= state.stats.sessions and state.customer_id in meta.pending:
            meta.pending.discard(state.customer_id)
            meta.dirty = True
            self._update_gauges()
        if previous is not None and previous.prediction_id == prediction.prediction_id:
            return Result()  # the same prediction again (a retry that raced, or a replay)
        state.set_prediction(prediction)
        if cluster is not None:
            state.cluster = cluster
        tables.put_state(state)
        previous_store = previous.store_id if previous is not None else None
        updates = contribution_updates(
            prediction, self.config.stockout, previous_store=previous_store,
            history=state.baskets(),
        )
        return Result([
            Output(store_topic_name(self.config), u.store_id.encode(), encode_store_event(u))
            for u in updates
        ])

    # -- the sweep (timer) --------------------------------------------------------------------

    def watermark(self, meta: PartitionMeta, now_us: int) -> int | None:
        """The partition's event-time watermark, advanced by processing time when it is quiet."""
        if meta.watermark is None:
            return None
        if meta.last_record_wall is None:
            return meta.watermark
        quiet = now_us - meta.last_record_wall
        if quiet >= self.config.quiet_after_s * MICROS_PER_SECOND:
            return meta.watermark + quiet
        return meta.watermark

    def on_sweep(
        self,
        tables: FunnelTables,
        *,
        partition: int,
        now_us: int,
        want_prediction: Callable[[str], bool] = lambda customer: True,
    ) -> Result:
        """Close the partition's idle baskets, list the pending customers due for a (re)try,
        and save the partition record when it changed."""
        meta = self.meta(tables, partition)
        result = Result()
        watermark = self.watermark(meta, now_us)
        if watermark is not None:
            for customer in sorted(meta.open):
                state = tables.get_state(customer)
                if state is None:
                    meta.open.discard(customer)
                    continue
                session = self.sessionizer.close_idle(state, watermark)
                if session is not None:
                    self._closed(state, (session,), meta, partition, result)
                    tables.put_state(state)
                self._track(state, meta)
        for customer in sorted(meta.pending):
            if any(s.customer_id == customer for s in result.predict) or not want_prediction(customer):
                continue
            state = tables.get_state(customer)
            if state is None or not state.sessions:
                meta.pending.discard(customer)
                continue
            result.predict.append(state.snapshot())
        if meta.dirty:
            tables.put_meta(partition, meta.to_bytes())
            meta.dirty = False
        if self.metrics is not None:
            self.metrics.sweeps.inc()
        self._update_gauges()
        return result

    # -- internals ----------------------------------------------------------------------------

    def _closed(
        self,
        state: FunnelState,
        sessions: tuple[v1.Session, ...],
        meta: PartitionMeta,
        partition: int,
        result: Result,
    ) -> None:
        key = state.customer_id.encode()
        for session in sessions:
            result.outputs.append(Output(SESSIONS.name, key, encode(session), partition))
            if self.metrics is not None:
                self.metrics.sessions_closed.labels(_close_reason_name(session.close_reason)).inc()
            self._check_prediction(state, session)
            scored = meta.detector.observe_session(state, session)
            if scored is not None and scored.alert is not None:
                result.outputs.append(Output(ANOMALY_ALERTS.name, key, encode(scored.alert)))
                if self.metrics is not None:
                    self.metrics.alerts.labels("anomaly").inc()
            meta.dirty = True
        if sessions and self.predicting and not sessions[-1].backfilled:
            self._queue_prediction(state, meta, result)

    def _resend(
        self, state: FunnelState, transaction_id: str, meta: PartitionMeta, partition: int,
        result: Result,
    ) -> None:
        """A BasketClosed for a basket the state already closed sends that session again
        (identical bytes) while the state keeps it, and asks for its prediction again if none
        came back. After a kill -9 the table can be ahead of lens.sessions: RocksDB and the
        changelog are written before the session is sent, and the records since the last offset
        commit are replayed to a state that has seen them, so the close would otherwise be
        ignored and a session that never reached the broker lost. A POS that resends a close
        gets a duplicate session record: lens.sessions is at-least-once, keyed by
        (customer_id, session_index)."""
        record = next((r for r in state.sessions if r.transaction_id == transaction_id), None)
        if record is None:
            return
        session = record.to_session(state.customer_id)
        result.outputs.append(
            Output(SESSIONS.name, state.customer_id.encode(), encode(session), partition)
        )
        predicted = state.last_prediction
        if (self.predicting and not record.backfilled
                and record.session_index == state.stats.sessions
                and (predicted is None or predicted.session_index < record.session_index)):
            meta.dirty = meta.dirty or state.customer_id not in meta.pending
            self._queue_prediction(state, meta, result)

    def _check_prediction(self, state: FunnelState, session: v1.Session) -> None:
        """Count whether the prediction made before ``session`` hit it (the live hit rate per
        model version), and tell the canary guard."""
        prediction = state.last_prediction
        if (session.backfilled or prediction is None
                or prediction.session_index >= session.session_index):
            return
        bought = {item.product_id for item in session.items}
        hit = bool(bought & set(prediction.products))
        if self.metrics is not None:
            self.metrics.prediction_checks.labels(
                prediction.model_label, str(prediction.model_version), "hit" if hit else "miss"
            ).inc()
        if self.canary_guard is not None:
            self.canary_guard.observe(prediction.model_label, prediction.model_version, hit)

    def _queue_prediction(self, state: FunnelState, meta: PartitionMeta, result: Result) -> None:
        meta.pending.add(state.customer_id)
        result.predict = [s for s in result.predict if s.customer_id != state.customer_id]
        result.predict.append(state.snapshot())  # the state itself may be cached and change on

    def _track(self, state: FunnelState, meta: PartitionMeta) -> None:
        was_open = state.customer_id in meta.open
        if state.open_basket is None:
            meta.open.discard(state.customer_id)
        else:
            meta.open.add(state.customer_id)
        if was_open != (state.open_basket is not None):
            meta.dirty = True
            self._update_gauges()


def _mark_backfilled(state: FunnelState, sessions: tuple[v1.Session, ...]) -> None:
    """Sessions closed by a backfill record come from history: mark them, in the output and in
    the kept records, so that they raise no alert and ask for no prediction."""
    reason = v1.CloseReason.CLOSE_REASON_BACKFILL
    closed = {session.session_index for session in sessions}
    for session in sessions:
        session.backfilled, session.close_reason = True, reason
    state.sessions = [
        dataclasses.replace(r, backfilled=True, close_reason=reason)
        if r.session_index in closed else r
        for r in state.sessions
    ]


def store_topic_name(config: FunnelServiceConfig) -> str:
    """The internal store-keyed topic (demand updates and re-keyed resupplies)."""
    return f"{config.app_id}-store-events"
