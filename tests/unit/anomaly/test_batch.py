import numpy as np
import pytest

from lens.anomaly.batch import FunnelObservation, detect_anomalies
from lens.anomaly.detector import AnomalyConfig, AnomalyDetector
from lens.anomaly.robust import RobustWindow

PREDICTED = [f"p{i}" for i in range(10)]


def observed(k: int) -> list[str]:
    """Shares k of the 10 predicted items: dA = 1 - k / 10."""
    return PREDICTED[:k] + [f"o{i}" for i in range(10 - k)]


def population() -> list[FunnelObservation]:
    rng = np.random.default_rng(0)
    rows = []
    # Cluster near (0, 0): the model does fine (dA 0.4 / 0.5 / 0.6, mostly 0.5).
    for i in range(30):
        rows.append(FunnelObservation(f"a{i}", PREDICTED, observed({0: 4, 1: 6}.get(i % 5, 5)), rng.normal(0, 0.1, 2)))
    # Cluster near (10, 10): the model always misses (dA 1.0); that is normal there.
    for i in range(30):
        rows.append(FunnelObservation(f"b{i}", PREDICTED, observed(0), 10 + rng.normal(0, 0.1, 2)))
    # Planted: embedded with the first cluster, behaves like nobody in it.
    rows.append(FunnelObservation("planted", PREDICTED, observed(0), np.array([0.05, -0.05])))
    return rows


def test_planted_outlier_is_the_only_outlier():
    result = detect_anomalies(population(), k_range=range(2, 5), config=AnomalyConfig(min_history=10))
    assert result.model.k == 2
    # planted vs the 30 others of its cluster: median 0.5, MAD 0 -> (1.0 - 0.5) / 0.05 = 10
    assert result.outliers() == [("planted", pytest.approx(10.0))]
    assert result.score_of("b3") == 0.0
    assert result.distances[result.customers.index("a0")] == pytest.approx(0.6)


def test_batch_score_equals_the_online_score_against_the_same_others():
    rows = population()
    config = AnomalyConfig(min_history=10, window=100)
    result = detect_anomalies(rows, k=2, config=config)
    planted_cluster = int(result.clusters[-1])
    others = [d for d, c in zip(result.distances[:-1], result.clusters[:-1], strict=True) if c == planted_cluster]
    detector = AnomalyDetector(config, {planted_cluster: RobustWindow.from_values(100, others)})
    online = detector.observe(
        customer_id="planted", cluster=planted_cluster, predicted=PREDICTED, ranking=(),
        observed=observed(0), recent=(), event_time=0, session_index=1,
    )
    assert online.score == result.score_of("planted")


def test_small_clusters_get_no_score():
    rows = population()[:5]
    result = detect_anomalies(rows, k=1, config=AnomalyConfig(min_history=10))
    assert np.isnan(result.scores).all() and result.outliers() == []


# -- observations from a history and a model ---------------------------------------------------

def _basket(customer, day, items):
    import datetime as dt

    from lens.data.basket import Basket

    names = tuple(items.split())
    return Basket(customer, f"{customer}-{day}", "S1", dt.datetime(2026, 1, 1) + dt.timedelta(days=day),
                  names, tuple(1.0 for _ in names), tuple(1.0 for _ in names))


class RepeatLast:
    """A fake model: the next basket is the last one again; it records what it was fitted on."""

    name = "repeat-last"

    def fit(self, train):
        self.fitted_on = {c: len(h) for c, h in train.items()}
        return self

    def predict(self, histories, k):
        from lens.baselines.recommender import NextBasket

        return {c: NextBasket(items=h[-1].items, scores=(), basket=h[-1].items)
                for c, h in histories.items() if h}


def test_last_session_is_observed_and_the_prediction_comes_from_the_ones_before():
    from lens.anomaly import funnel_observations, split_last_sessions

    funnels = {
        "steady": (_basket("steady", 0, "milk"), _basket("steady", 7, "milk")),
        "changer": (_basket("changer", 0, "milk tea"), _basket("changer", 7, "caviar")),
        "new": (_basket("new", 3, "tea"),),
    }
    split = split_last_sessions(funnels)
    assert split.too_short == 1 and set(split.funnels) == {"steady", "changer"}
    model = RepeatLast()
    embeddings = {"steady": [0.0, 1.0], "changer": [2.0, 3.0]}
    observations = funnel_observations(
        split, model, embed=lambda histories: np.array([embeddings[c] for c in histories]),
        config=AnomalyConfig(min_sessions=1),
    )
    assert model.fitted_on == {"steady": 1, "changer": 1}  # the observed session never seen
    by_customer = {o.customer_id: o for o in observations}
    assert by_customer["changer"].predicted == ("milk", "tea")
    assert by_customer["changer"].observed == ("caviar",)
    assert list(by_customer["changer"].embedding) == [2.0, 3.0]
    result = detect_anomalies(observations, k=1, config=AnomalyConfig(min_history=1))
    assert result.distances[result.customers.index("steady")] == 0.0
    assert result.distances[result.customers.index("changer")] == 1.0


def test_without_an_embedder_everyone_shares_one_cluster():
    from lens.anomaly import funnel_observations, split_last_sessions

    funnels = {c: (_basket(c, 0, "a"), _basket(c, 1, "b" if i % 2 else "a")) for i, c in enumerate("pqrstu")}
    config = AnomalyConfig(min_history=3, min_sessions=1)
    observations = funnel_observations(split_last_sessions(funnels), RepeatLast(), config=config)
    result = detect_anomalies(observations, config=config)
    assert result.model.k == 1 and set(result.clusters) == {0}


def test_no_customer_with_two_sessions_is_a_clear_error():
    from lens.anomaly import funnel_observations, split_last_sessions
    from lens.errors import DataError

    with pytest.raises(DataError, match="enough sessions"):
        funnel_observations(split_last_sessions({"x": (_basket("x", 0, "a"),)}), RepeatLast())


def test_the_level_smooths_the_last_scored_sessions_as_online():
    """Sessions 2..5 of 5 are predicted from the ones before (min_sessions 1); smoothing 3: the
    level of the last session is the mean dA of sessions 3, 4 and 5."""
    from lens.anomaly import funnel_observations, split_last_sessions

    baskets = ("milk", "milk", "milk", "tea", "tea")  # RepeatLast: dA 0, 0, 1, 0 for sessions 2-5
    funnels = {"c": tuple(_basket("c", day, items) for day, items in enumerate(baskets))}
    config = AnomalyConfig(min_sessions=1, smoothing=3, min_history=1)
    (obs,) = funnel_observations(split_last_sessions(funnels, min_sessions=1), RepeatLast(),
                                 config=config)
    assert list(obs.recent) == [0.0, 1.0] and obs.observed == ("tea",)
    result = detect_anomalies([obs], config=config)
    assert result.distances[0] == 0.0 and result.levels[0] == pytest.approx(1 / 3)
    # online, the same customer's state after sessions 3 and 4 holds the same recent dA
    detector = AnomalyDetector(config)
    online = detector.observe(customer_id="c", cluster=0, predicted=["tea"], ranking=["tea"],
                              observed=["tea"], recent=[0.0, 1.0], event_time=0, session_index=5)
    assert online.level == result.levels[0]
    # min_sessions 3: only sessions 4 and 5 are scored, so the level averages two dA
    config3 = AnomalyConfig(min_sessions=3, smoothing=3, min_history=1)
    (obs3,) = funnel_observations(split_last_sessions(funnels, min_sessions=3), RepeatLast(),
                                  config=config3)
    assert list(obs3.recent) == [1.0]
