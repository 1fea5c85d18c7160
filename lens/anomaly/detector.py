"""Algorithm 1 online: score each closed session against its customer's previous prediction.

For every closed session the service calls ``AnomalyDetector.observe_session`` with the
customer's state: the prediction made before the session (``FunnelState.last_prediction``), the
customer's recent dA values (``FunnelState.distances``) and cluster (``FunnelState.cluster``,
assigned by ``ClusterModel.assign_one``):

1. dA = ``prediction_distance(basket, ranking, observed)`` in [0, 1] (see ``distance``);
2. the customer's level = the mean dA of their last ``smoothing`` scored sessions, this one
   included: a behaviour change lasts, one odd basket does not, and single baskets are noisy;
3. dB = ``robust_z(level, window of the cluster)``: robust z-score against the last ``window``
   levels of the same cluster (the session's own level is scored first, then added);
4. alert when the window holds at least ``min_history`` values and dB > ``threshold``.

Sessions whose prediction saw fewer than ``min_sessions`` sessions are not scored: a model that
knows two baskets of a customer is expected to miss, which is not a change of behaviour.
Backfilled sessions feed the windows but never alert. Cluster -1 (not assigned yet) is a cluster
of its own. State = one window per cluster (``to_dict``/``from_dict``, ~20 bytes per value):
with K clusters and window W, about 20*K*W bytes. In the service each worker keeps the windows of
the customers it owns; customers hash evenly over partitions, so each partition's windows sample
the same cluster distributions (a global view would need a separate cluster-keyed table).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lens import v1
from lens.anomaly.distance import prediction_distance
from lens.anomaly.robust import RobustWindow
from lens.errors import ConfigError, DataError
from lens.stream.event_time import from_timestamp, to_timestamp
from lens.stream.funnel_state import FunnelState

__all__ = ["AnomalyConfig", "AnomalyDetector", "AnomalyResult"]


@dataclass(frozen=True)
class AnomalyConfig:
    """Attributes:
    threshold: dB above which a session is anomalous (3.5: the usual robust-z cut).
    min_history: levels a cluster needs before its scores can alert.
    window: levels kept per cluster (the most recent ones).
    min_scale: floor of the dB denominator (1.4826 * MAD), in dA units.
    smoothing: a customer's level is the mean dA of this many latest scored sessions.
    min_sessions: sessions the prediction must have seen for its next session to be scored.
    """

    threshold: float = 3.5
    min_history: int = 30
    window: int = 500
    min_scale: float = 0.05
    smoothing: int = 3
    min_sessions: int = 4

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_history < 1 or self.smoothing < 1 or self.min_sessions < 1:
            raise ConfigError("window, min_history, smoothing and min_sessions must be >= 1")
        if self.min_history > self.window:
            raise ConfigError(f"min_history {self.min_history} cannot exceed window {self.window}")
        if not (self.min_scale > 0 and math.isfinite(self.threshold)):
            raise ConfigError("min_scale must be > 0 and threshold finite")


@dataclass(frozen=True)
class AnomalyResult:
    """dA, the customer's level (mean recent dA), dB (None while the cluster has fewer than
    ``min_history`` values) and the alert."""

    distance: float
    level: float
    score: float | None
    alert: v1.AnomalyAlert | None = None


@dataclass
class AnomalyDetector:
    """Per-cluster dA windows and the alert rule; deterministic and serialisable."""

    config: AnomalyConfig = field(default_factory=AnomalyConfig)
    windows: dict[int, RobustWindow] = field(default_factory=dict)

    def observe(
        self,
        *,
        customer_id: str,
        cluster: int,
        predicted: Sequence[str],
        ranking: Sequence[str],
        observed: Sequence[str],
        recent: Sequence[float],
        event_time: int,
        session_index: int,
        model: v1.ModelRef | None = None,
        backfilled: bool = False,
    ) -> AnomalyResult:
        """Score one session (``event_time`` in microseconds) given the customer's previous dA
        values ``recent`` (oldest first), and add its level to the cluster."""
        distance = prediction_distance(predicted, ranking, observed)
        kept = [*recent, distance][-self.config.smoothing :]
        level = sum(kept) / len(kept)
        window = self.windows.get(cluster)
        if window is None:
            window = self.windows[cluster] = RobustWindow(self.config.window)
        score = None
        if len(window) >= self.config.min_history:
            score = window.score(level, min_scale=self.config.min_scale)
        window.add(level)
        alert = None
        if score is not None and score > self.config.threshold and not backfilled:
            alert = v1.AnomalyAlert(
                alert_id=f"{customer_id}:{session_index}",
                customer_id=customer_id,
                cluster=cluster,
                score=score,
                threshold=self.config.threshold,
                distance=level,
                predicted_items=list(dict.fromkeys(predicted)),
                observed_items=list(dict.fromkeys(observed)),
                event_time=to_timestamp(event_time),
                model=model or v1.ModelRef(),
            )
        return AnomalyResult(distance, level, score, alert)

    def observe_session(self, state: FunnelState, session: v1.Session) -> AnomalyResult | None:
        """``observe`` with the prediction, recent dA values and cluster kept in ``state``, whose
        ``distances`` it updates; None when the customer has no prediction made before this
        session, or one that saw fewer than ``min_sessions`` sessions. Call it after the session
        closed and before the prediction that follows it replaces ``state.last_prediction``."""
        prediction = state.last_prediction
        if prediction is None or prediction.session_index >= session.session_index:
            return None
        if prediction.session_index < self.config.min_sessions:
            return None
        result = self.observe(
            customer_id=state.customer_id,
            cluster=state.cluster,
            predicted=prediction.products,
            ranking=prediction.ranking,
            observed=[item.product_id for item in session.items],
            recent=state.distances,
            event_time=from_timestamp(session.timestamp),
            session_index=session.session_index,
            model=prediction.model,
            backfilled=session.backfilled,
        )
        state.distances = [*state.distances, result.distance][-self.config.smoothing :]
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"v": 1, "w": {str(c): w.values() for c, w in sorted(self.windows.items())}}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: AnomalyConfig = AnomalyConfig()
    ) -> "AnomalyDetector":
        if data.get("v") != 1:
            raise DataError(f"anomaly detector state format {data.get('v')!r} is not 1")
        windows = {
            int(c): RobustWindow.from_values(config.window, values)
            for c, values in data["w"].items()
        }
        return cls(config, windows)
