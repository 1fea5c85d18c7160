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
        customer_id="planted", cluster=planted_cluster, predicted=PREDICTED, observed=observed(0),
        event_time=0, session_index=1,
    )
    assert online.score == result.score_of("planted")


def test_small_clusters_get_no_score():
    rows = population()[:5]
    result = detect_anomalies(rows, k=1, config=AnomalyConfig(min_history=10))
    assert np.isnan(result.scores).all() and result.outliers() == []
