"""Algorithm 1 online: score each closed session against its customer's previous prediction.

For every closed session the service calls ``AnomalyDetector.observe`` with the basket the model
predicted before the session (``FunnelState.last_prediction``), the basket observed, and the
customer's cluster (``FunnelState.cluster``, assigned by ``ClusterModel.assign_one``):

1. dA = ``basket_distance(predicted, observed)`` = 1 - F1, in [0, 1];
2. dB = ``robust_z(dA, window of the cluster)``: robust z-score against the last ``window`` dA of
   the same cluster (the session's own dA is scored first, then added);
3. alert when the window holds at least ``min_history`` values and dB > ``threshold``.

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
from lens.anomaly.distance import basket_distance
from lens.anomaly.robust import RobustWindow
from lens.errors import ConfigError, DataError
from lens.stream.event_time import from_timestamp, to_timestamp
from lens.stream.funnel_state import FunnelState

__all__ = ["AnomalyConfig", "AnomalyDetector", "AnomalyResult"]


@dataclass(frozen=True)
class AnomalyConfig:
    """Attributes:
    threshold: dB above which a session is anomalous (3.5: the usual robust-z cut).
    min_history: dA values a cluster needs before its scores can alert.
    window: dA values kept per cluster (the most recent ones).
    min_scale: floor of the dB denominator (1.4826 * MAD), in dA units.
    """

    threshold: float = 3.5
    min_history: int = 30
    window: int = 500
    min_scale: float = 0.05

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_history < 1:
            raise ConfigError("window and min_history must be >= 1")
        if self.min_history > self.window:
            raise ConfigError(f"min_history {self.min_history} cannot exceed window {self.window}")
        if not (self.min_scale > 0 and math.isfinite(self.threshold)):
            raise ConfigError("min_scale must be > 0 and threshold finite")


@dataclass(frozen=True)
class AnomalyResult:
    """dA, dB (None while the cluster has fewer than ``min_history`` values) and the alert."""

    distance: float
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
        observed: Sequence[str],
        event_time: int,
        session_index: int,
        model: v1.ModelRef | None = None,
        backfilled: bool = False,
    ) -> AnomalyResult:
        """Score one session (``event_time`` in microseconds) and add its dA to the cluster."""
        distance = basket_distance(predicted, observed)
        window = self.windows.get(cluster)
        if window is None:
            window = self.windows[cluster] = RobustWindow(self.config.window)
        score = None
        if len(window) >= self.config.min_history:
            score = window.score(distance, min_scale=self.config.min_scale)
        window.add(distance)
        alert = None
        if score is not None and score > self.config.threshold and not backfilled:
            alert = v1.AnomalyAlert(
                alert_id=f"{customer_id}:{session_index}",
                customer_id=customer_id,
                cluster=cluster,
                score=score,
                threshold=self.config.threshold,
                distance=distance,
                predicted_items=list(dict.fromkeys(predicted)),
                observed_items=list(dict.fromkeys(observed)),
                event_time=to_timestamp(event_time),
                model=model or v1.ModelRef(),
            )
        return AnomalyResult(distance, score, alert)

    def observe_session(self, state: FunnelState, session: v1.Session) -> AnomalyResult | None:
        """``observe`` with the prediction and cluster kept in ``state``; None when the customer
        has no prediction made before this session. Call it after the session closed and before
        the prediction that follows it replaces ``state.last_prediction``."""
        prediction = state.last_prediction
        if prediction is None or prediction.session_index >= session.session_index:
            return None
        return self.observe(
            customer_id=state.customer_id,
            cluster=state.cluster,
            predicted=prediction.products,
            observed=[item.product_id for item in session.items],
            event_time=from_timestamp(session.timestamp),
            session_index=session.session_index,
            model=prediction.model,
            backfilled=session.backfilled,
        )

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
