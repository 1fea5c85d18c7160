"""Sessionizer: turns one customer's TransactionLine/BasketClosed events into closed Sessions.

Fed in arrival order, on event time only. Per customer, the rules are:

- A line joins the open basket when its transaction is the open one; a resent line (same
  ``transaction_id`` and ``line_no``) is ignored and counted (``Outcome.DUPLICATE``). Lines of a
  basket may arrive in any order: products are ordered by their earliest (time, line_no).
- A basket closes (a ``v1.Session`` is emitted) when
    * ``BasketClosed`` arrives for it (``CLOSE_REASON_BASKET_CLOSED``); when its ``line_count``
      says lines are still in flight, the close waits for them (``Outcome.CLOSE_PENDING``);
    * a line with a new transaction id arrives for the customer (``CLOSE_REASON_NEW_TRANSACTION``);
    * more than ``inactivity_timeout`` of event time passed since its last line or BasketClosed
      (``CLOSE_REASON_INACTIVITY``). Checked first on every event of the customer, with that
      event's time, and by ``close_idle(state, now)``.
- A line for a transaction that already closed, or older than the customer's last closed session,
  is late (``Outcome.LATE``): it changes nothing; the caller dead-letters or drops it.

Hook for the service: call ``close_idle`` (or ``SessionizerTable.close_idle``) periodically with
the partition's event-time watermark (the latest event time seen on it, minus any allowed
lateness). With partitions in event-time order, the sweep closes exactly the baskets the next
event would have closed, with the same content and reason, so results do not depend on when or
how often it runs, i.e. on replay speed. A quiet stream whose watermark stops moving is the
service's problem: it may advance the watermark by processing time (a documented trade of
determinism for latency); nothing here reads a clock.

Counts reconcile per customer (``FunnelStats``): ``lines_seen == lines_in_sessions +
duplicate_lines + late_lines + lines in the open basket``.
"""

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from lens import v1
from lens.data.basket import Basket
from lens.errors import ConfigError
from lens.stream.event_time import (
    MICROS_PER_DAY,
    as_utc,
    describe,
    from_datetime,
    from_timestamp,
)
from lens.stream.funnel_state import FunnelState, OpenBasket, SessionRecord

__all__ = [
    "Outcome",
    "SessionizerConfig",
    "Sessionizer",
    "SessionizerTable",
    "Step",
]

_REASON = v1.CloseReason


class Outcome(enum.Enum):
    """What an event did to its customer's state."""

    ADDED = "added"  # the line joined (or opened) the open basket
    DUPLICATE = "duplicate"  # the line was seen before; ignored
    LATE = "late"  # the line belongs to a closed transaction or predates the last session
    CLOSED = "closed"  # BasketClosed closed the open basket
    CLOSE_PENDING = "close_pending"  # BasketClosed noted; its line_count says lines are in flight
    CLOSE_IGNORED = "close_ignored"  # BasketClosed for a transaction that is not open


@dataclass(frozen=True)
class Step:
    """The result of one event: its outcome, the sessions it closed (0 or 1, oldest first), and
    for LATE/DUPLICATE/CLOSE_IGNORED a sentence for the dead-letter detail."""

    outcome: Outcome
    sessions: tuple[v1.Session, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class SessionizerConfig:
    """Attributes:
    inactivity_timeout: event time without a line after which an open basket closes.
    max_sessions: closed sessions kept per customer (the model's maximum history length).
    remember_closed: closed transactions whose line numbers are kept to tell duplicates from late
      lines; older ones are forgotten (a line for them counts as late if it predates the last
      session, else it opens a new basket).
    default_store: store id given to events with an empty store id ("" keeps it empty).
    """

    inactivity_timeout: dt.timedelta = dt.timedelta(hours=1)
    max_sessions: int = 50
    remember_closed: int = 8
    default_store: str = ""

    def __post_init__(self) -> None:
        if self.inactivity_timeout <= dt.timedelta(0):
            raise ConfigError("inactivity_timeout must be positive; set e.g. 1 hour")
        if self.max_sessions < 1 or self.remember_closed < 1:
            raise ConfigError("max_sessions and remember_closed must be >= 1")

    @property
    def timeout_micros(self) -> int:
        return int(self.inactivity_timeout / dt.timedelta(microseconds=1))


class Sessionizer:
    """The per-customer state machine; holds only its config, the state lives in FunnelState."""

    def __init__(self, config: SessionizerConfig = SessionizerConfig()) -> None:
        self.config = config

    def new_state(self, customer_id: str) -> FunnelState:
        return FunnelState(customer_id=customer_id)

    # -- events --------------------------------------------------------------------------------

    def on_event(self, state: FunnelState, event: v1.PosEvent) -> Step:
        """Apply one validated ``pos.transactions`` value for ``state``'s customer."""
        kind = event.WhichOneof("event")
        if kind == "line":
            return self.on_line(state, event.line)
        if kind == "basket_closed":
            return self.on_basket_closed(state, event.basket_closed)
        raise ValueError("PosEvent has no event set; validate events before sessionizing them")

    def on_line(self, state: FunnelState, line: v1.TransactionLine) -> Step:
        t = from_timestamp(line.timestamp)
        stats = state.stats
        stats.lines_seen += 1
        closed = self._close_if_idle(state, t)
        basket = state.open_basket
        tx, line_no = line.transaction_id, line.line_no
        if basket is not None and basket.transaction_id == tx:
            if line_no in basket.line_nos:
                stats.duplicate_lines += 1
                return Step(Outcome.DUPLICATE, closed, _seen_before(line_no, tx))
            self._add(basket, line, t)
            if basket.close_time is not None and len(basket.line_nos) >= basket.expected_lines:
                closed += (self._close(state, _REASON.CLOSE_REASON_BASKET_CLOSED),)
            return Step(Outcome.ADDED, closed)
        remembered = self._remembered(state, tx)
        if remembered is not None:
            if line_no in remembered:
                stats.duplicate_lines += 1
                return Step(Outcome.DUPLICATE, closed, _seen_before(line_no, tx))
            stats.late_lines += 1
            detail = f"line {line_no} arrived after transaction {tx!r} closed"
            return Step(Outcome.LATE, closed, detail)
        last = stats.last_session_time
        if last is not None and t < last:
            stats.late_lines += 1
            return Step(
                Outcome.LATE,
                closed,
                f"line {line_no} of transaction {tx!r} at {describe(t)} predates the customer's "
                f"last closed session at {describe(last)}",
            )
        if basket is not None:
            closed += (self._close(state, _REASON.CLOSE_REASON_NEW_TRANSACTION),)
        store = line.store_id or self.config.default_store
        state.open_basket = OpenBasket(transaction_id=tx, store_id=store, first_time=t, last_time=t)
        self._add(state.open_basket, line, t)
        return Step(Outcome.ADDED, closed)

    def on_basket_closed(self, state: FunnelState, close: v1.BasketClosed) -> Step:
        t = from_timestamp(close.timestamp)
        closed = self._close_if_idle(state, t)
        basket = state.open_basket
        if basket is None or basket.transaction_id != close.transaction_id:
            state.stats.ignored_closes += 1
            tx = close.transaction_id
            why = "already closed" if self._remembered(state, tx) is not None else "not open"
            return Step(Outcome.CLOSE_IGNORED, closed, f"transaction {tx!r} is {why}")
        basket.close_time = t if basket.close_time is None else max(basket.close_time, t)
        basket.expected_lines = max(basket.expected_lines, close.line_count)
        if not basket.store_id and close.store_id:
            basket.store_id = close.store_id
        if len(basket.line_nos) < basket.expected_lines:
            return Step(Outcome.CLOSE_PENDING, closed)
        closed += (self._close(state, _REASON.CLOSE_REASON_BASKET_CLOSED),)
        return Step(Outcome.CLOSED, closed)

    def close_idle(self, state: FunnelState, now: int) -> v1.Session | None:
        """Close the open basket when ``now`` (event time, microseconds) is more than the
        inactivity timeout past its last activity; the sweep the service runs periodically."""
        closed = self._close_if_idle(state, now)
        return closed[0] if closed else None

    def close_open(self, state: FunnelState) -> v1.Session | None:
        """Close the open basket now whatever its age (end of a replay), as INACTIVITY."""
        if state.open_basket is None:
            return None
        return self._close(state, _REASON.CLOSE_REASON_INACTIVITY)

    def backfill(self, state: FunnelState, basket: Basket) -> v1.Session:
        """Add a session loaded from history (``lens backfill``): it updates the state like a
        live one but is marked ``backfilled`` (no alerts). ``basket.timestamp`` is naive UTC."""
        t = from_datetime(as_utc(basket.timestamp))
        items = tuple(zip(basket.items, basket.quantities, basket.amounts, strict=True))
        reason = _REASON.CLOSE_REASON_BACKFILL
        return self._emit(state, basket.basket_id, basket.store_id, t, items, reason, True)

    # -- internals -----------------------------------------------------------------------------

    def _add(self, basket: OpenBasket, line: v1.TransactionLine, t: int) -> None:
        basket.line_nos.add(line.line_no)
        basket.first_time = min(basket.first_time, t)
        basket.last_time = max(basket.last_time, t)
        entry = basket.items.get(line.product_id)
        if entry is None:
            basket.items[line.product_id] = [line.quantity, line.amount, t, line.line_no]
        else:
            entry[0] += line.quantity
            entry[1] += line.amount
            if (t, line.line_no) < (entry[2], entry[3]):
                entry[2], entry[3] = t, line.line_no

    def _remembered(self, state: FunnelState, tx: str) -> list[int] | None:
        for closed_tx, line_nos in state.closed_recent:
            if closed_tx == tx:
                return line_nos
        return None

    def _close_if_idle(self, state: FunnelState, now: int) -> tuple[v1.Session, ...]:
        basket = state.open_basket
        if basket is not None and now - basket.last_activity > self.config.timeout_micros:
            return (self._close(state, _REASON.CLOSE_REASON_INACTIVITY),)
        return ()

    def _close(self, state: FunnelState, reason: int) -> v1.Session:
        basket = state.open_basket
        assert basket is not None
        state.open_basket = None
        state.stats.lines_in_sessions += len(basket.line_nos)
        state.closed_recent.append((basket.transaction_id, sorted(basket.line_nos)))
        del state.closed_recent[: max(0, len(state.closed_recent) - self.config.remember_closed)]
        items = basket.ordered_items()
        tx, store, t = basket.transaction_id, basket.store_id, basket.last_activity
        return self._emit(state, tx, store, t, items, reason, False)

    def _emit(
        self,
        state: FunnelState,
        tx: str,
        store: str,
        t: int,
        items: tuple[tuple[str, float, float], ...],
        reason: int,
        backfilled: bool,
    ) -> v1.Session:
        previous = state.stats.last_session_time
        gap = 0.0 if previous is None else max(0, t - previous) / MICROS_PER_DAY
        record = SessionRecord(
            transaction_id=tx,
            store_id=store,
            timestamp=t,
            items=items,
            session_index=state.stats.sessions + 1,
            close_reason=reason,
            days_since_previous=gap,
            backfilled=backfilled,
        )
        state.add_session(record, max_sessions=self.config.max_sessions)
        return record.to_session(state.customer_id)


def _seen_before(line_no: int, tx: str) -> str:
    return f"line {line_no} of transaction {tx!r} was seen before"


@dataclass
class SessionizerTable:
    """Many customers' states in a dict: what one partition of the service's table holds, for
    batch replays and tests. ``open_customers`` indexes customers with an open basket so a
    sweep touches only those (the service should keep the same index rather than scan its
    whole table)."""

    config: SessionizerConfig = field(default_factory=SessionizerConfig)
    states: dict[str, FunnelState] = field(default_factory=dict)
    open_customers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.sessionizer = Sessionizer(self.config)

    def state(self, customer_id: str) -> FunnelState:
        found = self.states.get(customer_id)
        if found is None:
            found = self.states[customer_id] = self.sessionizer.new_state(customer_id)
        return found

    def on_event(self, event: v1.PosEvent) -> Step:
        kind = event.WhichOneof("event")
        if kind is None:
            raise ValueError("PosEvent has no event set; validate events before sessionizing them")
        customer = getattr(event, kind).customer_id
        state = self.state(customer)
        step = self.sessionizer.on_event(state, event)
        self._track(state)
        return step

    def close_idle(self, now: int) -> list[v1.Session]:
        """Sweep: close every basket idle at event time ``now``; sessions in customer-id order."""
        closed = []
        for customer in sorted(self.open_customers):
            state = self.states[customer]
            session = self.sessionizer.close_idle(state, now)
            if session is not None:
                closed.append(session)
            self._track(state)
        return closed

    def close_all(self) -> list[v1.Session]:
        """Close every open basket (end of a replay); sessions in customer-id order."""
        closed = []
        for customer in sorted(self.open_customers):
            session = self.sessionizer.close_open(self.states[customer])
            if session is not None:
                closed.append(session)
        self.open_customers.clear()
        return closed

    def replay(self, events: Iterable[v1.PosEvent]) -> list[v1.Session]:
        """Every session ``events`` produce, open baskets closed at the end."""
        sessions = [s for event in events for s in self.on_event(event).sessions]
        return sessions + self.close_all()

    def _track(self, state: FunnelState) -> None:
        if state.open_basket is None:
            self.open_customers.discard(state.customer_id)
        else:
            self.open_customers.add(state.customer_id)
