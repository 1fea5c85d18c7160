"""Property tests: random (often invalid) events never raise unexpectedly, and counts reconcile."""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from lens import v1
from lens.stream.event_time import to_timestamp
from lens.stream.sessionizer import Outcome, SessionizerConfig, SessionizerTable
from lens.stream.validation import ValidationConfig, Validator, validate_pos_event, validate_resupply

from tests.unit.stream.events import T0

REASONS = set(v1.DeadLetterReason.values())
MINUTE = 60_000_000

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
any_seconds = st.integers(min_value=-(2**40), max_value=2**40)


@st.composite
def garbage_events(draw) -> v1.PosEvent:
    kind = draw(st.sampled_from(["line", "close", "none"]))
    event = v1.PosEvent()
    if kind == "line":
        event.line.transaction_id = draw(st.text(max_size=3))
        event.line.line_no = draw(st.integers(0, 2**32 - 1))
        event.line.customer_id = draw(st.text(max_size=3))
        event.line.store_id = draw(st.text(max_size=2))
        event.line.product_id = draw(st.text(max_size=3))
        if draw(st.booleans()):
            event.line.timestamp.seconds = draw(any_seconds)
        event.line.quantity = draw(any_float)
        event.line.amount = draw(any_float)
    elif kind == "close":
        event.basket_closed.transaction_id = draw(st.text(max_size=3))
        event.basket_closed.customer_id = draw(st.text(max_size=3))
        if draw(st.booleans()):
            event.basket_closed.timestamp.seconds = draw(any_seconds)
        event.basket_closed.line_count = draw(st.integers(0, 5))
    return event


@given(garbage_events(), st.one_of(st.none(), st.integers(-(2**60), 2**60)))
@settings(max_examples=300, deadline=None)
def test_validation_never_raises_and_explains_itself(event, reference):
    result = validate_pos_event(event, ValidationConfig(known_stores=frozenset({"a", ""})), reference_time=reference)
    if result is not None:
        reason, detail = result
        assert reason in REASONS and reason != 0 and detail


@given(
    st.text(max_size=3), st.text(max_size=3), st.text(max_size=12), any_float
)
@settings(max_examples=200, deadline=None)
def test_resupply_validation_never_raises(store, product, day, quantity):
    result = validate_resupply(v1.Resupply(store_id=store, product_id=product, day=day, quantity=quantity))
    assert result is None or (result[0] in REASONS and result[1])


# Plausible streams: few customers/transactions/lines so that duplicates, late lines and
# interleavings are frequent; times jitter so some lines arrive out of order.
@st.composite
def pos_streams(draw) -> list[v1.PosEvent]:
    n = draw(st.integers(1, 40))
    minute = 0
    events = []
    for _ in range(n):
        minute += draw(st.sampled_from([0, 0, 1, 5, 30, 61, 200]))
        jitter = draw(st.integers(-3, 3))
        t = to_timestamp(T0 + (minute + jitter) * MINUTE)
        customer = draw(st.sampled_from(["a", "b"]))
        tx = draw(st.sampled_from(["t1", "t2", "t3", "t4"]))
        if draw(st.integers(0, 5)) == 0:
            close = v1.BasketClosed(
                transaction_id=tx, customer_id=customer, timestamp=t, line_count=draw(st.integers(0, 4))
            )
            events.append(v1.PosEvent(basket_closed=close))
        else:
            item = v1.TransactionLine(
                transaction_id=tx,
                line_no=draw(st.integers(1, 4)),
                customer_id=customer,
                store_id=draw(st.sampled_from(["", "s1"])),
                product_id=draw(st.sampled_from(["p1", "p2", "p3"])),
                timestamp=t,
                quantity=draw(st.sampled_from([0.5, 1.0, 2.0, -1.0])),
                amount=1.0,
            )
            events.append(v1.PosEvent(line=item))
    return events


@given(pos_streams(), st.lists(st.integers(0, 39), max_size=5))
@settings(max_examples=120, deadline=None)
def test_counts_reconcile(events, sweep_at):
    validator = Validator(ValidationConfig(max_future=None))
    table = SessionizerTable(SessionizerConfig(inactivity_timeout=dt.timedelta(minutes=60), remember_closed=2))
    sessions, lines_in, units_added = [], 0, 0.0
    watermark = 0
    for i, event in enumerate(events):
        if validator.check(event) is not None:
            continue
        step = table.on_event(event)
        sessions += step.sessions
        if event.HasField("line"):
            lines_in += 1
            watermark = max(watermark, event.line.timestamp.ToMicroseconds())
            if step.outcome is Outcome.ADDED:
                units_added += event.line.quantity
            else:
                assert step.outcome in (Outcome.DUPLICATE, Outcome.LATE)
        if i in sweep_at:
            sessions += table.close_idle(watermark)
    sessions += table.close_all()

    stats = [s.stats for s in table.states.values()]
    assert lines_in == sum(s.lines_seen for s in stats)
    assert lines_in == sum(s.lines_in_sessions + s.duplicate_lines + s.late_lines for s in stats)
    assert abs(units_added - sum(i.quantity for s in sessions for i in s.items)) < 1e-9
    for customer, state in table.states.items():
        mine = [s for s in sessions if s.customer_id == customer]
        assert [s.session_index for s in mine] == list(range(1, len(mine) + 1))
        assert all(s.items and s.features.days_since_previous >= 0 for s in mine)
        assert state.open_basket is None


def _by_customer(sessions: list[v1.Session]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = {}
    for s in sessions:
        grouped.setdefault(s.customer_id, []).append(s.SerializeToString(deterministic=True))
    return grouped


@given(pos_streams(), st.lists(st.integers(0, 39), max_size=8))
@settings(max_examples=120, deadline=None)
def test_sweeps_at_the_watermark_minus_allowed_lateness_change_nothing(events, sweep_at):
    """Streams are out of order by at most 6 minutes (jitter of +-3); sweeping at the watermark
    minus that lateness, whenever timers fire, gives the same sessions as never sweeping."""
    config = SessionizerConfig(inactivity_timeout=dt.timedelta(minutes=60))
    valid = [e for e in events if validate_pos_event(e) is None]
    reference = _by_customer(SessionizerTable(config).replay(valid))
    table = SessionizerTable(config)
    sessions, watermark = [], None
    for i, event in enumerate(valid):
        sessions += table.on_event(event).sessions
        t = getattr(event, event.WhichOneof("event")).timestamp.ToMicroseconds()
        watermark = t if watermark is None else max(watermark, t)
        if i in sweep_at:
            sessions += table.close_idle(watermark - 6 * MINUTE)
    sessions += table.close_all()
    assert _by_customer(sessions) == reference
