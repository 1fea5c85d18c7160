import datetime as dt
import json

import pytest

from lens import v1
from lens.errors import DataError
from lens.stream.event_time import to_timestamp
from lens.stream.funnel_state import FunnelState, LastPrediction, SessionRecord, expected_store
from lens.stream.sessionizer import Sessionizer, SessionizerConfig

from tests.unit.stream.events import at, closed, line


def record(store: str, index: int, n_items: int = 1) -> SessionRecord:
    items = tuple((f"product-{i:08d}", 1.0, 2.5) for i in range(n_items))
    return SessionRecord(f"tx-{index:010d}", store, at(index * 1440), items, index, 1, 1.0)


def test_expected_store_is_most_frequent_recent_store_ties_to_most_recent():
    sessions = [record("a", 1), record("b", 2), record("a", 3), record("b", 4)]
    assert expected_store(sessions) == "b"  # a: 2, b: 2; b visited last
    assert expected_store(sessions + [record("a", 5)]) == "a"
    assert expected_store([], default="s0") == "s0"


def test_bytes_round_trip_keeps_everything():
    sessionizer = Sessionizer(SessionizerConfig(inactivity_timeout=dt.timedelta(hours=1)))
    state = FunnelState("c1", cluster=4)
    for event in (line("t1", 1, "p1", 0), line("t1", 2, "p2", 1), closed("t1", 2), line("t2", 1, "p3", 10)):
        sessionizer.on_event(state, event)
    state.set_prediction(
        v1.Prediction(
            prediction_id="c1:1",
            customer_id="c1",
            store_id="s1",
            as_of=to_timestamp(at(2)),
            session_index=1,
            basket=[v1.PredictedItem(product_id="p1", score=0.9, quantity=2)],
            days_to_next=3.5,
            model=v1.ModelRef(name="lens", version=3, label="canary"),
        )
    )
    restored = FunnelState.from_bytes(state.to_bytes())
    assert restored == state
    assert restored.last_prediction.to_prediction("c1") == state.last_prediction.to_prediction("c1")
    assert restored.stats.store_visits == {"s1": 1}
    assert restored.baskets()[0].items == ("p1", "p2")


def test_bytes_are_the_dict_after_kept_sessions_were_encoded_and_the_state_moved_on():
    state = FunnelState("c1")
    for i in range(1, 6):
        state.add_session(record("s1", i, n_items=3), max_sessions=3)
        state.distances.append(0.1 * i)
        assert json.loads(state.to_bytes()) == state.to_dict()  # sessions encoded once, reused
        state.set_prediction(v1.Prediction(
            prediction_id=f"c1:{i}", customer_id="c1", store_id="s1", session_index=i,
            as_of=to_timestamp(i * 86_400_000_000), days_to_next=0.5 * i,
            basket=[v1.PredictedItem(product_id=f"p{i}", score=0.5, quantity=2.0)],
            ranking=[v1.PredictedItem(product_id=f"p{i}", score=0.5)],
            model=v1.ModelRef(name="lens", version=i),
        ))
        # the prediction encoded once too, and the new one's encoding after it changed
        assert json.loads(state.to_bytes()) == state.to_dict()
        assert json.loads(state.to_bytes())["p"][0] == f"c1:{i}"
    assert [r.session_index for r in FunnelState.from_bytes(state.to_bytes()).sessions] == [3, 4, 5]


def test_session_record_round_trips_through_the_proto():
    r = record("s1", 2, n_items=3)
    assert SessionRecord.from_session(r.to_session("c1")) == r


def test_state_size_per_customer_is_bounded_and_documented():
    """The numbers in the funnel_state docstring: ~350 bytes per 10-item session, ~18 KB full."""
    state = FunnelState("customer-0001")
    for i in range(1, 200):
        state.add_session(record("store-01", i, n_items=10), max_sessions=50)
    one = len(json.dumps(record("store-01", 1, n_items=10).to_list(), separators=(",", ":")))
    assert 250 <= one <= 400
    state.last_prediction = LastPrediction(
        "customer-0001:199", "store-01", at(0), 199, tuple((f"product-{i:08d}", 0.5, 1.0) for i in range(10)),
        2.0, "lens", 1,
    )
    size = len(state.to_bytes())
    assert len(state.sessions) == 50
    assert size < 20_000


def test_bad_bytes_raise_data_error():
    with pytest.raises(DataError):
        FunnelState.from_bytes(b"not json")
    with pytest.raises(DataError):
        FunnelState.from_bytes(b'{"v": 99}')
    with pytest.raises(DataError):
        FunnelState.from_bytes(b'{"v": 1, "c": "x"}')


def test_a_session_is_read_as_a_basket_once_per_customer():
    r = record("s1", 3, n_items=2)
    first = r.to_basket("c1")
    assert r.to_basket("c1") is first  # every prediction reads the kept sessions again
    assert first.items == ("product-00000000", "product-00000001") and first.quantities == (1.0, 1.0)
    other = r.to_basket("c2")
    assert other.customer_id == "c2" and other.items == first.items
    assert FunnelState.from_bytes(FunnelState("c1", sessions=[r]).to_bytes()).sessions == [r]
