import datetime as dt
import random

import pytest

from lens import v1
from lens.errors import ConfigError
from lens.stream.funnel_state import FunnelState
from lens.stream.sessionizer import Outcome, Sessionizer, SessionizerConfig, SessionizerTable

from tests.unit.stream.events import DAY, at, closed, line

REASON = v1.CloseReason
HOUR = SessionizerConfig(inactivity_timeout=dt.timedelta(minutes=60))


def items(session: v1.Session) -> list[tuple[str, float, float]]:
    return [(i.product_id, i.quantity, i.amount) for i in session.items]


def feed(events, config=HOUR):
    sessionizer = Sessionizer(config)
    state = FunnelState("c1")
    steps = [sessionizer.on_event(state, e) for e in events]
    return sessionizer, state, steps


def test_basket_closed_emits_summed_items_and_features():
    _, state, steps = feed(
        [
            line("t1", 1, "p1", 0, quantity=1, amount=2),
            line("t1", 2, "p2", 1, quantity=2, amount=3),
            line("t1", 3, "p1", 2, quantity=1, amount=2),
            closed("t1", 3),
        ]
    )
    assert [s.outcome for s in steps] == [Outcome.ADDED] * 3 + [Outcome.CLOSED]
    (session,) = steps[-1].sessions
    # p1: 1 + 1 units, 2 + 2 amount; p2 scanned second.
    assert items(session) == [("p1", 2.0, 4.0), ("p2", 2.0, 3.0)]
    assert session.close_reason == REASON.CLOSE_REASON_BASKET_CLOSED
    assert session.session_index == 1
    assert session.store_id == "s1" and session.transaction_id == "t1" and session.customer_id == "c1"
    assert session.timestamp.ToMicroseconds() == at(3)  # the BasketClosed time, the latest event
    f = session.features
    # 2024-03-04 is a Monday.
    assert (f.basket_size, f.total_quantity, f.total_amount) == (2, 4.0, 7.0)
    assert (f.day_of_week, f.day_of_month, f.month, f.days_since_previous) == (1, 4, 3, 0.0)
    assert state.open_basket is None and state.stats.lines_in_sessions == 3


def test_duplicates_are_ignored_and_counted_before_and_after_close():
    _, state, steps = feed(
        [line("t1", 1, "p1", 0), line("t1", 1, "p1", 0), line("t1", 2, "p2", 1), closed("t1", 2), line("t1", 2, "p2", 1)]
    )
    assert [s.outcome for s in steps] == [
        Outcome.ADDED, Outcome.DUPLICATE, Outcome.ADDED, Outcome.CLOSED, Outcome.DUPLICATE,
    ]
    assert items(steps[3].sessions[0]) == [("p1", 1.0, 1.0), ("p2", 1.0, 1.0)]
    assert state.stats.duplicate_lines == 2
    assert steps[1].detail == "line 1 of transaction 't1' was seen before"


def test_out_of_order_lines_keep_first_scanned_order():
    _, _, steps = feed([line("t1", 3, "p3", 2), line("t1", 1, "p1", 0), line("t1", 2, "p2", 1), closed("t1", 3)])
    assert [i.product_id for i in steps[-1].sessions[0].items] == ["p1", "p2", "p3"]


def test_new_transaction_closes_the_open_basket():
    _, _, steps = feed([line("t1", 1, "p1", 0), line("t2", 1, "p2", 30), closed("t2", 31)])
    (first,) = steps[1].sessions
    assert steps[1].outcome is Outcome.ADDED
    assert first.close_reason == REASON.CLOSE_REASON_NEW_TRANSACTION and items(first) == [("p1", 1.0, 1.0)]
    (second,) = steps[2].sessions
    assert second.session_index == 2
    # t1 ends at minute 0, t2 at minute 31: 31 / 1440 days.
    assert second.features.days_since_previous == pytest.approx(31 / 1440)


def test_inactivity_on_event_time_closes_and_makes_the_next_line_late():
    _, state, steps = feed([line("t1", 1, "p1", 0), line("t1", 2, "p2", 61)])
    assert steps[1].outcome is Outcome.LATE
    (session,) = steps[1].sessions
    assert session.close_reason == REASON.CLOSE_REASON_INACTIVITY and items(session) == [("p1", 1.0, 1.0)]
    assert session.timestamp.ToMicroseconds() == at(0)  # the basket's last line, not the late one
    assert state.stats.late_lines == 1
    assert "arrived after transaction 't1' closed" in steps[1].detail


def test_inactivity_beats_new_transaction_as_close_reason():
    _, _, steps = feed([line("t1", 1, "p1", 0), line("t2", 1, "p2", 90)])
    assert steps[1].outcome is Outcome.ADDED
    assert steps[1].sessions[0].close_reason == REASON.CLOSE_REASON_INACTIVITY


def test_close_idle_uses_a_strict_event_time_gap():
    sessionizer, state, _ = feed([line("t1", 1, "p1", 0), line("t1", 2, "p2", 10)])
    assert sessionizer.close_idle(state, at(70)) is None  # exactly 60 minutes after the last line
    session = sessionizer.close_idle(state, at(70) + 1)
    assert session is not None and session.close_reason == REASON.CLOSE_REASON_INACTIVITY
    assert sessionizer.close_idle(state, at(500)) is None


def test_basket_closed_waits_for_lines_in_flight():
    _, _, steps = feed([line("t1", 1, "p1", 0), closed("t1", 1, line_count=2), line("t1", 2, "p2", 0.5)])
    assert [s.outcome for s in steps] == [Outcome.ADDED, Outcome.CLOSE_PENDING, Outcome.ADDED]
    (session,) = steps[2].sessions
    assert session.close_reason == REASON.CLOSE_REASON_BASKET_CLOSED
    assert [i.product_id for i in session.items] == ["p1", "p2"]


def test_unknown_or_repeated_close_is_ignored():
    _, state, steps = feed([line("t1", 1, "p1", 0), closed("t9", 1), closed("t1", 2), closed("t1", 3)])
    assert [s.outcome for s in steps] == [
        Outcome.ADDED, Outcome.CLOSE_IGNORED, Outcome.CLOSED, Outcome.CLOSE_IGNORED,
    ]
    assert steps[3].detail == "transaction 't1' is already closed"
    assert state.stats.ignored_closes == 2


def test_line_older_than_the_last_session_is_late():
    _, state, steps = feed([line("t1", 1, "p1", 100), closed("t1", 101), line("t0", 1, "p9", 50)])
    assert steps[2].outcome is Outcome.LATE and steps[2].sessions == ()
    assert state.open_basket is None and state.stats.late_lines == 1


def test_state_keeps_only_the_last_sessions():
    config = SessionizerConfig(max_sessions=3, remember_closed=2)
    events = [e for i in range(5) for e in (line(f"t{i}", 1, f"p{i}", i * 10), closed(f"t{i}", i * 10))]
    _, state, steps = feed(events, config)
    assert [s.transaction_id for s in state.sessions] == ["t2", "t3", "t4"]
    assert state.stats.sessions == 5 and steps[-1].sessions[0].session_index == 5
    assert [tx for tx, _ in state.closed_recent] == ["t3", "t4"]


def test_config_rejects_nonsense():
    with pytest.raises(ConfigError):
        SessionizerConfig(inactivity_timeout=dt.timedelta(0))
    with pytest.raises(ConfigError):
        SessionizerConfig(max_sessions=0)


def _stream(seed: int) -> list[v1.PosEvent]:
    """Three customers, several baskets each, in event-time order, with resent lines."""
    rng = random.Random(seed)
    events = []
    for c in ("a", "b", "c"):
        minute = rng.randint(0, 30)
        for b in range(4):
            tx = f"{c}-{b}"
            for n in range(1, rng.randint(2, 4) + 1):
                minute += rng.randint(0, 5)
                events.append((minute, line(tx, n, f"p{rng.randint(1, 5)}", minute, customer=c)))
                if rng.random() < 0.2:
                    events.append((minute, line(tx, n, "dup", minute, customer=c)))
            if rng.random() < 0.5:
                events.append((minute, closed(tx, minute, customer=c)))
            minute += rng.choice([30, 90, 24 * 60])
    events.sort(key=lambda me: me[0])  # stable: a customer's events keep their order
    return [e for _, e in events]


def _by_customer(sessions):
    grouped = {}
    for s in sessions:
        grouped.setdefault(s.customer_id, []).append(s.SerializeToString(deterministic=True))
    return grouped


@pytest.mark.parametrize("seed", range(5))
def test_replay_speed_does_not_change_sessions(seed):
    events = _stream(seed)
    reference = _by_customer(SessionizerTable(HOUR).replay(events))
    rng = random.Random(seed)
    for sweep_every in (1, 2, 7):
        table = SessionizerTable(HOUR)
        sessions, watermark = [], None
        for i, event in enumerate(events):
            sessions += table.on_event(event).sessions
            t = event.line.timestamp if event.HasField("line") else event.basket_closed.timestamp
            watermark = max(watermark or 0, t.ToMicroseconds())
            if i % sweep_every == 0 or rng.random() < 0.3:  # as if processing-time timers fired
                sessions += table.close_idle(watermark)
        sessions += table.close_all()
        assert _by_customer(sessions) == reference


def test_state_survives_a_bytes_round_trip_mid_stream():
    events = _stream(7)
    reference = SessionizerTable(HOUR).replay(events)
    table = SessionizerTable(HOUR)
    sessions = []
    for event in events:
        sessions += table.on_event(event).sessions
        table.states = {c: FunnelState.from_bytes(s.to_bytes()) for c, s in table.states.items()}
    sessions += table.close_all()
    assert [s.SerializeToString() for s in sessions] == [s.SerializeToString() for s in reference]


def test_gap_of_days_gives_days_since_previous():
    _, _, steps = feed([line("t1", 1, "p1", 0), closed("t1", 0), line("t2", 1, "p1", 3 * 24 * 60), closed("t2", 3 * 24 * 60)])
    assert steps[-1].sessions[0].features.days_since_previous == 3.0
    assert steps[-1].sessions[0].timestamp.ToMicroseconds() - at(0) == 3 * DAY


def test_backfill_adds_marked_sessions_that_count_like_live_ones():
    from lens.data.basket import Basket

    sessionizer = Sessionizer(HOUR)
    state = FunnelState("c1")
    basket = Basket("c1", "b1", "s2", dt.datetime(2024, 3, 1, 12, 0), ("p1", "p2"), (1.0, 2.0), (3.0, 4.0))
    session = sessionizer.backfill(state, basket)
    assert session.backfilled and session.close_reason == REASON.CLOSE_REASON_BACKFILL
    assert items(session) == [("p1", 1.0, 3.0), ("p2", 2.0, 4.0)] and session.session_index == 1
    # A live basket at 2024-03-04 10:00, 2 days and 22 hours later, continues the funnel.
    _ = sessionizer.on_event(state, line("t1", 1, "p1", 0))
    live = sessionizer.on_event(state, closed("t1", 0)).sessions[0]
    assert live.session_index == 2
    assert live.features.days_since_previous == pytest.approx(2 + 22 / 24)
    assert state.baskets()[0] == basket
