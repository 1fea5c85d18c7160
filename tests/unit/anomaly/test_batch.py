import numpy as np
import pytest

from lens.anomaly.batch import FunnelObservation, detect_anomalies
from lens.anomaly.detector import AnomalyConfig, AnomalyDetector
from lens.anomaly.robust import RobustWindow

PREDICTED = [f"p{i}" for i in range(10)]
# The dA mechanics alone: the level is the mean dA once a customer has two sessions.
DA_ONLY = {"novelty_weight": 0.0, "novelty_window": 1, "established": 1}
ROUTINE = (("a",), ("a",))  # two sessions of the same product: novelty 0


def da_only(**kw) -> AnomalyConfig:
    return AnomalyConfig(**{**DA_ONLY, **kw})


def observed(k: int) -> list[str]:
    """Shares k of the 10 predicted items: dA = 1 - k / 10."""
    return PREDICTED[:k] + [f"o{i}" for i in range(10 - k)]


def population() -> list[FunnelObservation]:
    rng = np.random.default_rng(0)
    rows = []
    # Cluster near (0, 0): the model does fine (dA 0.4 / 0.5 / 0.6, mostly 0.5).
    for i in range(30):
        rows.append(FunnelObservation(f"a{i}", PREDICTED, observed({0: 4, 1: 6}.get(i % 5, 5)), rng.normal(0, 0.1, 2), sessions=ROUTINE))
    # Cluster near (10, 10): the model always misses (dA 1.0); that is normal there.
    for i in range(30):
        rows.append(FunnelObservation(f"b{i}", PREDICTED, observed(0), 10 + rng.normal(0, 0.1, 2), sessions=ROUTINE))
    # Planted: embedded with the first cluster, behaves like nobody in it.
    rows.append(FunnelObservation("planted", PREDICTED, observed(0), np.array([0.05, -0.05]), sessions=ROUTINE))
    return rows


def test_planted_outlier_is_the_only_outlier():
    result = detect_anomalies(population(), k_range=range(2, 5), config=da_only(min_history=10))
    assert result.model.k == 2
    # planted vs the 30 others of its cluster: median 0.5, MAD 0 -> (1.0 - 0.5) / 0.05 = 10
    assert result.outliers() == [("planted", pytest.approx(10.0))]
    assert result.score_of("b3") == 0.0
    assert result.distances[result.customers.index("a0")] == pytest.approx(0.6)


def test_batch_score_equals_the_online_score_against_the_same_others():
    rows = population()
    config = da_only(min_history=10, window=100)
    result = detect_anomalies(rows, k=2, config=config)
    planted_cluster = int(result.clusters[-1])
    others = [d for d, c in zip(result.distances[:-1], result.clusters[:-1], strict=True) if c == planted_cluster]
    detector = AnomalyDetector(config, {planted_cluster: RobustWindow.from_values(100, others)})
    online = detector.observe(
        customer_id="planted", cluster=planted_cluster, predicted=PREDICTED, ranking=(),
        observed=observed(0), recent=(), sessions=ROUTINE, event_time=0, session_index=1,
    )
    assert online.score == result.score_of("planted")


def test_small_clusters_get_no_score():
    rows = population()[:5]
    result = detect_anomalies(rows, k=1, config=da_only(min_history=10))
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
        config=da_only(min_sessions=1),
    )
    assert model.fitted_on == {"steady": 1, "changer": 1}  # the observed session never seen
    by_customer = {o.customer_id: o for o in observations}
    assert by_customer["changer"].predicted == ("milk", "tea")
    assert by_customer["changer"].observed == ("caviar",)
    assert list(by_customer["changer"].embedding) == [2.0, 3.0]
    result = detect_anomalies(observations, k=1, config=da_only(min_history=1))
    assert result.distances[result.customers.index("steady")] == 0.0
    assert result.distances[result.customers.index("changer")] == 1.0


def test_without_an_embedder_everyone_shares_one_cluster():
    from lens.anomaly import funnel_observations, split_last_sessions

    funnels = {c: (_basket(c, 0, "a"), _basket(c, 1, "b" if i % 2 else "a")) for i, c in enumerate("pqrstu")}
    config = da_only(min_history=3, min_sessions=1)
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
    config = da_only(min_sessions=1, smoothing=3, min_history=1)
    (obs,) = funnel_observations(split_last_sessions(funnels, min_sessions=1), RepeatLast(),
                                 config=config)
    assert list(obs.recent) == [0.0, 1.0] and obs.observed == ("tea",)
    result = detect_anomalies([obs], config=config)
    assert result.distances[0] == 0.0 and result.levels[0] == pytest.approx(1 / 3)
    # online, the same customer's state after sessions 3 and 4 holds the same recent dA
    detector = AnomalyDetector(config)
    online = detector.observe(customer_id="c", cluster=0, predicted=["tea"], ranking=["tea"],
                              observed=["tea"], recent=[0.0, 1.0], sessions=obs.sessions,
                              event_time=0, session_index=5)
    assert online.level == result.levels[0]
    # min_sessions 3: only sessions 4 and 5 are scored, so the level averages two dA
    config3 = da_only(min_sessions=3, smoothing=3, min_history=1)
    (obs3,) = funnel_observations(split_last_sessions(funnels, min_sessions=3), RepeatLast(),
                                  config=config3)
    assert list(obs3.recent) == [1.0]


def test_the_novelty_of_the_latest_sessions_is_scored_as_online_and_short_histories_are_not():
    from lens.anomaly import funnel_observations, split_last_sessions

    config = AnomalyConfig(min_sessions=1, min_history=1, novelty_window=2, established=2)
    funnels = {
        "steady": tuple(_basket("steady", d, "milk bread") for d in range(5)),
        "switcher": tuple(_basket("switcher", d, b) for d, b in
                          enumerate(("milk bread", "milk bread", "milk", "beer chips", "beer"))),
        "newcomer": tuple(_basket("newcomer", d, "milk") for d in range(3)),
    }
    observations = funnel_observations(split_last_sessions(funnels), RepeatLast(), config=config)
    by_customer = {o.customer_id: o for o in observations}
    assert by_customer["switcher"].sessions[-2:] == (("beer", "chips"), ("beer",))
    result = detect_anomalies(observations, config=config)
    level = dict(zip(result.customers, result.levels, strict=True))
    # switcher's last 3 dA (RepeatLast): milk after milk bread 1/6 (F1 2/3, nothing missed),
    # beer chips after milk 1, beer after beer chips 1/6; novelty of {beer, chips}: 1
    assert level["switcher"] == pytest.approx(0.15 * (1 / 6 + 1.0 + 1 / 6) / 3 + 0.85 * 1.0)
    assert level["steady"] == 0.0
    assert np.isnan(level["newcomer"]) and np.isnan(result.score_of("newcomer"))
    # the newcomer joins no reference: the switcher is scored against the steady customer alone
    detector = AnomalyDetector(config, {0: RobustWindow.from_values(500, [0.0])})
    switcher = by_customer["switcher"]
    online = detector.observe(
        customer_id="switcher", cluster=0, predicted=switcher.predicted, ranking=switcher.ranking,
        observed=switcher.observed, recent=switcher.recent, sessions=switcher.sessions,
        event_time=0, session_index=5,
    )
    assert online.level == pytest.approx(level["switcher"])
    assert online.score == pytest.approx(result.score_of("switcher"))
