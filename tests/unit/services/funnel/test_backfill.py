"""Backfill records (header ``lens-backfill: 1``): sessions marked backfilled, no prediction,
no anomaly alert; live records after them behave as usual."""

from lens import v1
from lens.topics import ANOMALY_ALERTS, SESSIONS
from services.funnel.backfill import BACKFILL_HEADERS, is_backfill
from services.funnel.processor import FunnelProcessor
from tests.unit.services.funnel.conftest import NOW_US, closed, line


def test_the_marker_is_read_from_either_header_form():
    assert is_backfill(BACKFILL_HEADERS) and is_backfill({"lens-backfill": b"1"})
    assert not is_backfill(None) and not is_backfill([("lens-cluster", b"1")])


def test_backfilled_sessions_fill_the_state_without_predictions_or_alerts(make_config, tables):
    processor = FunnelProcessor(make_config())

    def feed(records, backfill):
        return [processor.on_pos(tables, partition=0, offset=i, key=b"c1", value=v,
                                 now_us=NOW_US, backfill=backfill) for i, v in enumerate(records)]

    history = feed([line("H1", 1, "c1", "milk", 0), closed("H1", "c1", 1, line_count=1),
                    line("H2", 1, "c1", "tea", 60), closed("H2", "c1", 61, line_count=1)], True)
    sessions = [v1.Session.FromString(o.value) for r in history for o in r.outputs
                if o.topic == SESSIONS.name]
    assert [s.transaction_id for s in sessions] == ["H1", "H2"]
    assert all(s.backfilled and s.close_reason == v1.CloseReason.CLOSE_REASON_BACKFILL
               for s in sessions)
    assert not any(r.predict for r in history) and not any(
        o.topic == ANOMALY_ALERTS.name for r in history for o in r.outputs)
    state = tables.get_state("c1")
    assert state.stats.sessions == 2 and all(s.backfilled for s in state.sessions)
    (live,) = feed([line("L1", 1, "c1", "jam", 120), closed("L1", "c1", 121, line_count=1)], False)[1:]
    (session,) = [v1.Session.FromString(o.value) for o in live.outputs if o.topic == SESSIONS.name]
    assert not session.backfilled and session.session_index == 3
    assert [s.customer_id for s in live.predict] == ["c1"]  # live sessions ask for a prediction
