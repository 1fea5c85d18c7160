"""Algorithm 1 in batch (``lens anomalies``): every customer's last step scored within its cluster.

    for each funnel i:  dA_i = prediction_distance(basket_i, ranking_i, observed_i)
                        level_i = sustained_level(last ``smoothing`` dA of i, sessions of i)
    C = fk(fE_i for all i)                       # k-means over funnel embeddings
    for each cluster j, funnel i in j:  O_i = dB(level_i | levels of the other funnels of j)

The same dA, level and robust z-score as the online ``AnomalyDetector``: a customer's batch
score equals the online score it would get with a window holding exactly the other members'
levels of its cluster.

``funnel_observations`` builds the observations from a history and a model, the way the worker
sees a customer's newest sessions: the observed basket is the customer's last session, the
predicted basket, ranking and funnel embedding come from the sessions before it (the online
prediction is made when the previous session closes, and its cluster comes with it); the dA of
the ``smoothing - 1`` sessions before the last are computed the same way, each from the
sessions before it. As online, a session is scored only when its prediction saw at least
``min_sessions`` sessions; customers whose last session is not are left out. Customers with
too few sessions for the level's novelty get a NaN level and score and do not join their
cluster's reference.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.anomaly.detector import AnomalyConfig, sustained_level
from lens.anomaly.distance import prediction_distance
from lens.anomaly.robust import leave_one_out_scores
from lens.data.basket import Funnels
from lens.errors import DataError
from lens.stream.event_time import as_utc, from_datetime
from lens.stream.funnel_state import RANKING_KEPT
from lens.stream.sessionizer import SessionizerConfig

if TYPE_CHECKING:  # lens.baselines imports xgboost: keep it out of the worker's imports
    from lens.baselines.recommender import Recommender

__all__ = [
    "BatchAnomalies",
    "Embedder",
    "FunnelObservation",
    "ObservedFunnels",
    "detect_anomalies",
    "funnel_observations",
    "split_last_sessions",
]

KEPT_SESSIONS = SessionizerConfig().max_sessions
# Funnel embeddings fE: histories -> float [N, D], rows in the histories' order.
Embedder = Callable[[Funnels], np.ndarray]


@dataclass(frozen=True)
class FunnelObservation:
    """One customer's predicted next basket (and longer ranking), observed next basket, funnel
    embedding [D], the dA of its previous scored sessions (``recent``, oldest first), the
    products of all its sessions (``sessions``, oldest first, the observed one last) and their
    event times in microseconds (``times``, same order; the need-level signals need them)."""

    customer_id: str
    predicted: Sequence[str]
    observed: Sequence[str]
    embedding: Sequence[float]
    ranking: Sequence[str] = ()
    recent: Sequence[float] = ()
    sessions: Sequence[Sequence[str]] = ()
    times: Sequence[int] = ()


@dataclass(frozen=True)
class BatchAnomalies:
    """Per-customer results, index-aligned with ``customers`` ([N] each).

    distances: dA of the last session; levels: what is scored (``sustained_level``), NaN where
    the history is too short; scores: dB, NaN without a level or where the cluster has fewer
    than ``min_history`` other members with one.
    """

    customers: tuple[str, ...]
    distances: np.ndarray  # float64 [N], dA
    levels: np.ndarray  # float64 [N]
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
    distances = np.array(
        [prediction_distance(o.predicted, o.ranking, o.observed) for o in observations]
    )  # [N]
    levels = np.array([
        np.nan if (level := sustained_level([*o.recent, d], o.sessions, config, o.times)) is None
        else level
        for o, d in zip(observations, distances, strict=True)
    ])  # [N]
    scores = np.full(len(observations), np.nan)
    for cluster in np.unique(labels):
        members = np.flatnonzero((labels == cluster) & ~np.isnan(levels))
        if len(members) - 1 >= config.min_history:
            scores[members] = leave_one_out_scores(levels[members], min_scale=config.min_scale)
    return BatchAnomalies(customers, distances, levels, labels, scores, model, config.threshold)


@dataclass(frozen=True)
class ObservedFunnels:
    """``funnels``: the customers whose last session can be scored (its prediction sees at
    least ``min_sessions`` sessions); ``too_short``: customers left out for fewer sessions."""

    funnels: dict[str, tuple]
    too_short: int


def split_last_sessions(funnels: Funnels, *, min_sessions: int = 1) -> ObservedFunnels:
    """Keep the funnels (in time order) with more than ``min_sessions`` sessions."""
    kept = {c: tuple(f) for c, f in funnels.items() if len(f) > min_sessions}
    return ObservedFunnels(kept, len(funnels) - len(kept))


def funnel_observations(
    split: ObservedFunnels,
    recommender: "Recommender",
    *,
    embed: Embedder | None = None,
    config: AnomalyConfig = AnomalyConfig(),
    k: int = RANKING_KEPT,
) -> list[FunnelObservation]:
    """One observation per customer of ``split`` that the model predicts for. ``recommender``
    is fitted on each customer's sessions before the last one (a trained LENS run keeps its
    weights), so the scored session never leaks into its prediction. ``embed`` None (a model
    without funnel embeddings, e.g. a baseline): every customer gets the same embedding, i.e.
    one cluster for everyone, like the worker without a cluster model."""
    from lens.evaluation.evaluator import predict_all  # imports the baselines (xgboost)

    if not split.funnels:
        raise DataError(
            "no customer has enough sessions: anomaly detection compares a customer's last "
            f"session with the prediction made from the {config.min_sessions} or more before it"
        )
    recommender.fit({c: f[:-1] for c, f in split.funnels.items()})
    # back = 0: the last session; back = 1, 2, ...: the sessions whose dA the level smooths in
    steps = []
    for back in range(config.smoothing):
        histories = {
            c: f[: len(f) - 1 - back]
            for c, f in split.funnels.items()
            if len(f) - 1 - back >= config.min_sessions
        }
        predictions = predict_all(recommender, histories, k=k) if histories else {}
        steps.append((back, histories, predictions))
    _, last_histories, last_predictions = steps[0]
    customers = [c for c in last_histories if c in last_predictions]
    if embed is None:
        embeddings = np.zeros((len(customers), 1))
    else:
        embeddings = np.asarray(embed({c: last_histories[c] for c in customers}))  # [N, D]
        if embeddings.shape[0] != len(customers):
            raise DataError(
                f"the embedder gave {embeddings.shape[0]} embeddings for {len(customers)} funnels"
            )

    def observed(customer: str, back: int) -> tuple[str, ...]:
        funnel = split.funnels[customer]
        return funnel[len(funnel) - 1 - back].items

    observations = []
    for i, c in enumerate(customers):
        recent = [
            prediction_distance(p[c].basket, p[c].items[:RANKING_KEPT], observed(c, back))
            for back, _, p in reversed(steps[1:])
            if c in p
        ]
        answer = last_predictions[c]
        kept = split.funnels[c][-KEPT_SESSIONS:]  # the sessions the worker keeps: what it sees
        observations.append(FunnelObservation(
            c, tuple(answer.basket), observed(c, 0), embeddings[i],
            ranking=tuple(answer.items[:RANKING_KEPT]), recent=recent,
            sessions=tuple(b.items for b in kept),
            times=tuple(from_datetime(as_utc(b.timestamp)) for b in kept),
        ))
    return observations
