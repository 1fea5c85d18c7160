"""Algorithm 1 in batch (``lens anomalies``): every customer's last step scored within its cluster.

    for each funnel i:  dA_i = basket_distance(predicted_i, observed_i)
    C = fk(fE_i for all i)                       # k-means over funnel embeddings
    for each cluster j, funnel i in j:  O_i = dB(dA_i | dA of the other funnels of j)

The same ``basket_distance`` and robust z-score as the online ``AnomalyDetector``: a customer's
batch score equals the online score it would get with a window holding exactly the other
members of its cluster.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.anomaly.detector import AnomalyConfig
from lens.anomaly.distance import basket_distance
from lens.anomaly.robust import leave_one_out_scores
from lens.errors import DataError

__all__ = ["BatchAnomalies", "FunnelObservation", "detect_anomalies"]


@dataclass(frozen=True)
class FunnelObservation:
    """One customer's predicted next basket, observed next basket and funnel embedding [D]."""

    customer_id: str
    predicted: Sequence[str]
    observed: Sequence[str]
    embedding: Sequence[float]


@dataclass(frozen=True)
class BatchAnomalies:
    """Per-customer results, index-aligned with ``customers`` ([N] each).

    scores: dB, NaN where the cluster has fewer than ``min_history`` other members.
    """

    customers: tuple[str, ...]
    distances: np.ndarray  # float64 [N], dA
    clusters: np.ndarray  # int64 [N]
    scores: np.ndarray  # float64 [N], dB
    model: ClusterModel
    threshold: float

    def outliers(self) -> list[tuple[str, float]]:
        """(customer, dB) with dB > threshold, highest first (ties by customer id)."""
        pairs = zip(self.customers, self.scores, strict=True)
        flagged = [(c, float(s)) for c, s in pairs if s > self.threshold]
        return sorted(flagged, key=lambda cs: (-cs[1], cs[0]))

    def score_of(self, customer_id: str) -> float:
        return float(self.scores[self.customers.index(customer_id)])


def detect_anomalies(
    observations: Sequence[FunnelObservation],
    *,
    clusters: ClusterModel | None = None,
    k: int | None = None,
    k_range: Sequence[int] = range(2, 9),
    config: AnomalyConfig = AnomalyConfig(),
    seed: int = 0,
) -> BatchAnomalies:
    """Score every observation. ``clusters`` reuses a fitted model; otherwise one is fitted on
    the embeddings (``k`` given, or chosen by silhouette over ``k_range``)."""
    if not observations:
        raise DataError("no funnels to score: anomaly detection needs at least one observation")
    customers = tuple(o.customer_id for o in observations)
    if len(set(customers)) != len(customers):
        raise DataError("each customer may appear once in an anomaly batch")
    embeddings = np.array([np.asarray(o.embedding, dtype=np.float64) for o in observations])
    # embeddings: [N, D]
    model = clusters or fit_clusters(embeddings, k=k, k_range=k_range, seed=seed)
    labels = model.assign(embeddings)  # [N]
    distances = np.array([basket_distance(o.predicted, o.observed) for o in observations])  # [N]
    scores = np.full(len(observations), np.nan)
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        if len(members) - 1 >= config.min_history:
            scores[members] = leave_one_out_scores(distances[members], min_scale=config.min_scale)
    return BatchAnomalies(customers, distances, labels, scores, model, config.threshold)
