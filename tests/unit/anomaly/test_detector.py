import math

import pytest

from lens import v1
from lens.anomaly.detector import AnomalyConfig, AnomalyDetector, sustained_level
from lens.anomaly.needs import PRIOR_SPREAD, PRIOR_WEIGHT
from lens.errors import ConfigError
from lens.stream.event_time import to_timestamp
from lens.stream.funnel_state import FunnelState, LastPrediction, SessionRecord

T = 1_700_000_000_000_000
DAY = 86_400_000_000
PREDICTED = [f"p{i}" for i in range(10)]
# The dA mechanics alone: the level is the mean dA once a customer has two sessions.
DA_ONLY = {"novelty_weight": 0.0, "novelty_window": 1, "established": 1}
ROUTINE = (("a",), ("a",))  # two sessions of the same product: novelty 0


def config(**kw) -> AnomalyConfig:
    return AnomalyConfig(**{**DA_ONLY, **kw})


def record(index: int, *products: str, day: float = 0.0) -> SessionRecord:
    items = tuple((p, 1.0, 1.0) for p in products)
    return SessionRecord(f"t{index}", "s1", T + int(day * DAY), items, index, 1, 1.0)


def observed_with_overlap(k: int) -> list[str]:
    """10 observed items sharing k with PREDICTED: F1 = 2k / 20, dA = 1 - k / 10."""
    return PREDICTED[:k] + [f"other{i}" for i in range(10 - k)]


def observe(detector, customer, cluster, predicted, observed, ranking=(), recent=(),
            sessions=ROUTINE, **kw):
    return detector.observe(
        customer_id=customer, cluster=cluster, predicted=predicted, ranking=ranking,
        observed=observed, recent=recent, sessions=sessions, event_time=T, session_index=2, **kw,
    )


def test_scores_by_hand_after_min_history():
    detector = AnomalyDetector(config(min_history=3, window=10))
    # dA = (1 - F1) / 2 + miss / 2: {a,b} vs {a,b} = 0; vs {a,c}: F1 = 1/2, c missed ->
    # 0.25 + 0.25; vs {a}: F1 = 2/3, nothing missed -> 1/6
    results = [
        observe(detector, "c1", 0, ["a", "b"], ["a", "b"]),
        observe(detector, "c2", 0, ["a", "b"], ["a", "c"]),
        observe(detector, "c3", 0, ["a", "b"], ["a"]),
    ]
    assert [r.distance for r in results] == pytest.approx([0.0, 0.5, 1 / 6])
    assert all(r.score is None and r.alert is None for r in results)
    # window [0, 0.5, 1/6]: median 1/6, MAD 1/6 -> dB of 1.0 = (5/6) / (1.4826 / 6) = 5 / 1.4826
    result = observe(detector, "c4", 0, ["a", "b"], ["x", "y"])
    assert result.distance == 1.0
    assert result.score == pytest.approx(5 / 1.4826)
    assert result.alert is None  # 3.37 < 3.5
    # the ranking counts as expected: x in it halves the miss
    assert observe(detector, "c5", 0, ["a", "b"], ["x", "y"], ranking=["x"]).distance == 0.75


def test_planted_outlier_is_detected_only_against_its_own_cluster():
    detector = AnomalyDetector(config(threshold=3.5, min_history=30, window=200))
    # Cluster 0: 60% of customers share 5 of 10 items (dA 0.5), 20% 4 (0.6), 20% 6 (0.4).
    # median 0.5, MAD 0 -> scale is the 0.05 floor.
    for i in range(40):
        overlap = {0: 4, 1: 6}.get(i % 5, 5)
        r = observe(detector, f"n{i}", 0, PREDICTED, observed_with_overlap(overlap))
        assert r.alert is None  # normal customers: dB <= (0.6 - 0.5) / 0.05 = 2
    # Cluster 1: customers whose predictions always miss (dA 1.0).
    for i in range(40):
        observe(detector, f"m{i}", 1, PREDICTED, observed_with_overlap(0))

    planted = observe(detector, "planted", 0, PREDICTED, observed_with_overlap(0), model=v1.ModelRef(name="lens", version=3))
    # (1.0 - 0.5) / 0.05 = 10
    assert planted.score == pytest.approx(10.0)
    alert = planted.alert
    assert alert is not None
    assert (alert.alert_id, alert.customer_id, alert.cluster) == ("planted:2", "planted", 0)
    assert (alert.threshold, alert.distance) == (3.5, 1.0)
    assert list(alert.predicted_items) == PREDICTED and list(alert.observed_items) == observed_with_overlap(0)
    assert alert.event_time.ToMicroseconds() == T and alert.model.version == 3

    same_in_cluster_1 = observe(detector, "m-new", 1, PREDICTED, observed_with_overlap(0))
    assert same_in_cluster_1.score == 0.0 and same_in_cluster_1.alert is None


def test_backfilled_sessions_feed_the_window_but_never_alert():
    detector = AnomalyDetector(config(min_history=3, window=10))
    for _ in range(3):
        observe(detector, "c", 0, ["a"], ["a"])
    result = observe(detector, "c", 0, ["a"], ["b"], backfilled=True)
    assert result.score == pytest.approx(20.0) and result.alert is None  # (1 - 0) / 0.05
    assert len(detector.windows[0]) == 4


def test_state_round_trip():
    detector = AnomalyDetector(config(min_history=2, window=3))
    for k in range(5):
        observe(detector, "c", k % 2, PREDICTED, observed_with_overlap(k))
    restored = AnomalyDetector.from_dict(detector.to_dict(), detector.config)
    assert restored.to_dict() == detector.to_dict()
    a = observe(detector, "c", 0, PREDICTED, observed_with_overlap(9))
    b = observe(restored, "c", 0, PREDICTED, observed_with_overlap(9))
    assert a == b


def test_observe_session_uses_the_state_prediction_and_cluster():
    detector = AnomalyDetector(config(min_history=1, window=5, min_sessions=1))
    state = FunnelState("c1", cluster=2, sessions=[record(1, "a"), record(2, "a")])
    session = v1.Session(
        customer_id="c1", session_index=2, timestamp=to_timestamp(T),
        items=[v1.SessionItem(product_id="a", quantity=1)],
    )
    assert detector.observe_session(state, session) is None  # no prediction yet
    state.last_prediction = LastPrediction("c1:1", "s1", T, 1, (("a", 0.9, 1.0), ("b", 0.8, 1.0)), 2.0, "lens", 7)
    result = detector.observe_session(state, session)
    assert result.distance == pytest.approx(1 / 6)  # F1 = 2 / 3, nothing missed
    assert list(detector.windows) == [2]
    assert state.distances == [pytest.approx(1 / 6)]


def test_observe_session_measures_overdue_needs_in_the_days_of_the_kept_sessions():
    """Milk every 2 days for 8 sessions, then bread only: how late milk is depends on the
    sessions' own times, not on how many trips came since."""
    catalog = {"milk": "dairy", "bread": "bakery"}
    cfg = AnomalyConfig(min_history=1, window=5, min_sessions=1, categories=catalog,
                        novelty_weight=0.0, smoothing=1, overdue_tolerance=0.0, drop_weight=1.0,
                        new_weight=0.0, discovery_weight=0.0)

    def level(last_day: float) -> float:
        sessions = [record(i, "milk", day=2 * i) for i in range(1, 9)]
        sessions.append(record(9, "bread", day=last_day))
        state = FunnelState("c1", sessions=sessions)
        state.last_prediction = LastPrediction("c1:8", "s1", T, 8, (("bread", 0.9, 1.0),), 2.0,
                                               "lens", 7)
        session = v1.Session(customer_id="c1", session_index=9,
                             timestamp=to_timestamp(T + int(last_day * DAY)),
                             items=[v1.SessionItem(product_id="bread", quantity=1)])
        return AnomalyDetector(cfg).observe_session(state, session).level

    # milk last on day 16, 7 intervals of exactly 2 days: its spread is the prior's, diluted;
    # on day 22, 6 days since on a 2-day interval; on day 18, no later than usual
    spread = math.sqrt(PRIOR_WEIGHT * PRIOR_SPREAD**2 / (PRIOR_WEIGHT + 7))
    assert level(22.0) == pytest.approx(math.log(3) / spread)
    assert level(18.0) == pytest.approx(0.0)


def test_a_customer_level_is_the_mean_of_the_latest_distances():
    detector = AnomalyDetector(config(min_history=1, window=5, smoothing=3))
    result = observe(detector, "c", 0, ["a"], ["x"], recent=[0.0, 0.0, 0.5, 0.5])
    # one odd basket (dA 1) after two ordinary ones: level (0.5 + 0.5 + 1) / 3
    assert (result.distance, result.level) == (1.0, pytest.approx(2 / 3))
    assert detector.windows[0].values() == [pytest.approx(2 / 3)]


def test_sessions_after_a_prediction_from_too_short_a_history_are_not_scored():
    detector = AnomalyDetector(config(min_history=1, window=5, min_sessions=3))
    state = FunnelState("c1", sessions=[record(1, "a"), record(2, "x")])
    session = v1.Session(customer_id="c1", session_index=3, timestamp=to_timestamp(T),
                         items=[v1.SessionItem(product_id="x", quantity=1)])
    state.last_prediction = LastPrediction("c1:2", "s1", T, 2, (("a", 0.9, 1.0),), 2.0, "lens", 7)
    assert detector.observe_session(state, session) is None
    assert detector.windows == {} and state.distances == []
    state.last_prediction = LastPrediction("c1:3", "s1", T, 3, (("a", 0.9, 1.0),), 2.0, "lens", 7)
    session.session_index = 4
    assert detector.observe_session(state, session).distance == 1.0


def test_config_validation():
    with pytest.raises(ConfigError):
        AnomalyConfig(min_history=10, window=5)


def test_the_level_blends_the_mean_distance_with_the_novelty_of_the_latest_sessions():
    cfg = AnomalyConfig(smoothing=3, novelty_window=2, established=3, novelty_weight=0.85)
    sessions = [("a", "b"), ("a", "c"), ("b",), ("x", "a"), ("y",)]
    # window {x, a, y} against {a, b, c}: x and y are new -> novelty 2/3
    level = sustained_level([0.9, 0.2, 0.4, 0.6], sessions, cfg)
    assert level == pytest.approx(0.15 * 0.4 + 0.85 * 2 / 3)
    assert sustained_level([0.5], sessions[1:], cfg) is None  # 2 sessions before the window


def test_a_short_history_is_not_scored_but_keeps_its_distance():
    detector = AnomalyDetector(AnomalyConfig(min_history=1, window=5, min_sessions=1,
                                             novelty_window=2, established=2))
    state = FunnelState("c1", sessions=[record(1, "a"), record(2, "a"), record(3, "b")])
    session = v1.Session(customer_id="c1", session_index=3, timestamp=to_timestamp(T),
                         items=[v1.SessionItem(product_id="b", quantity=1)])
    state.last_prediction = LastPrediction("c1:2", "s1", T, 2, (("a", 0.9, 1.0),), 2.0, "lens", 7)
    result = detector.observe_session(state, session)
    assert (result.distance, result.level, result.score, result.alert) == (1.0, None, None, None)
    assert detector.windows == {} and state.distances == [1.0]
    # a later session closed with this one is not part of its history
    state.sessions.append(record(4, "c"))
    assert detector.observe_session(state, session).level is None


def test_a_customer_buying_outside_their_repertoire_session_after_session_alerts():
    """Everyone misses the model's basket alike (dA 0.5); only the switcher's last 4 sessions
    hold products never bought before: the level tells them apart, one basket's dA does not."""
    detector = AnomalyDetector(AnomalyConfig(min_history=30, min_sessions=1))
    routine = [("milk", "bread")] * 7
    switched = [("milk", "bread")] * 3 + [("beer", "chips"), ("pasta",), ("beer",), ("chips",)]
    for i in range(40):
        ordinary = observe(detector, f"n{i}", 0, ["milk", "tea"], ["milk", "bread"],
                           recent=[0.5, 0.5], sessions=routine)
        assert ordinary.level == pytest.approx(0.15 * 0.5) and ordinary.alert is None
    switcher = observe(detector, "s", 0, ["milk", "tea"], ["milk", "bread"], recent=[0.5, 0.5],
                       sessions=switched)
    assert switcher.distance == 0.5 and switcher.level == pytest.approx(0.15 * 0.5 + 0.85)
    assert switcher.alert is not None and switcher.alert.distance == switcher.level
