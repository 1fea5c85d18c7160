"""Algorithm 1 online: score each closed session against its customer's previous prediction.

For every closed session the service calls ``AnomalyDetector.observe_session`` with the
customer's state: the prediction made before the session (``FunnelState.last_prediction``), the
customer's recent dA values (``FunnelState.distances``), kept sessions (``FunnelState.sessions``,
the newest one included; the sessionizer keeps the last 50, so the repertoire spans at most
those) and cluster (``FunnelState.cluster``, assigned by ``ClusterModel.assign_one``):

1. dA = ``prediction_distance(basket, ranking, observed)`` in [0, 1] (see ``distance``);
2. the customer's level = ``sustained_level``: the mean dA of their last ``smoothing`` scored
   sessions, this one included (a behaviour change lasts, one odd basket does not, and single
   baskets are noisy), blended with the ``novelty`` of their last ``novelty_window`` sessions
   against their own earlier ones (``repertoire``): the model's expectation and the customer's
   established repertoire, both against what was bought; with a product catalog
   (``AnomalyConfig.categories``) plus the need-level signals of ``needs``: ``drop_weight`` x
   how late the customer's regular categories are (in units of their own regularity, beyond
   ``overdue_tolerance``), ``new_weight`` x the categories they long went without and first
   bought lately (beyond ``new_tolerance``) and ``discovery_weight`` x the first purchases of
   categories beyond their own pace (beyond ``discovery_tolerance``); with the catalog's
   departments (``AnomalyConfig.departments``) plus ``department_weight`` x their purchases
   (a category in a session) of the departments they started in the novelty window;
3. dB = ``robust_z(level, window of the cluster)``: robust z-score against the last ``window``
   levels of the same cluster (the session's own level is scored first, then added);
4. alert when the window holds at least ``min_history`` values and dB > ``threshold``.

Sessions whose prediction saw fewer than ``min_sessions`` sessions are not scored: a model that
knows two baskets of a customer is expected to miss, which is not a change of behaviour. Nor
are sessions with fewer than ``established`` sessions before the novelty window: in a short
history every product is new (their dA still joins the customer's ``distances``).
Backfilled sessions feed the windows but never alert. Cluster -1 (not assigned yet) is a cluster
of its own. State = one window per cluster (``to_dict``/``from_dict``, ~20 bytes per value):
with K clusters and window W, about 20*K*W bytes. In the service each worker keeps the windows of
the customers it owns; customers hash evenly over partitions, so each partition's windows sample
the same cluster distributions (a global view would need a separate cluster-keyed table).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lens import v1
from lens.anomaly.distance import prediction_distance
from lens.anomaly.needs import (
    OVERDUE_TOLERANCE,
    TYPICAL_OVERDUE_TOLERANCE,
    discovery_excess,
    first_purchases,
    need_sessions,
    new_department_purchases,
    overdue_needs,
    purchase_days,
    read_catalog,
    read_departments,
    read_need_intervals,
)
from lens.anomaly.repertoire import novelty
from lens.anomaly.robust import RobustWindow
from lens.errors import ConfigError, DataError
from lens.stream.event_time import MICROS_PER_DAY, from_timestamp, to_timestamp
from lens.stream.funnel_state import FunnelState

if TYPE_CHECKING:
    from lens.settings import LensSettings

__all__ = ["AnomalyConfig", "AnomalyDetector", "AnomalyResult", "sustained_level"]


@dataclass(frozen=True)
class AnomalyConfig:
    """Attributes:
    threshold: dB above which a session is anomalous (3.5: the usual robust-z cut).
    min_history: levels a cluster needs before its scores can alert.
    window: levels kept per cluster (the most recent ones).
    min_scale: floor of the dB denominator (1.4826 * MAD), in level units.
    smoothing: a customer's level is the mean dA of this many latest scored sessions.
    min_sessions: sessions the prediction must have seen for its next session to be scored.
    novelty_window: latest sessions whose products are compared with the customer's earlier ones.
    established: sessions the customer needs before that window for a session to be scored.
    novelty_weight: share of the novelty in the level (the rest: the mean dA). 0.85: on the
        synthetic benchmark (seeds 7-9, BENCHMARKS.md) 0.5 and 0.7 found fewer planted
        changes per false alert, and 1.0 (novelty alone) no more than 0.85.
    categories: the retailer's catalog, product -> category (``lens.segments.
        read_product_subclasses``); None = no need-level signals, the level as without them.
    drop_weight, new_weight, discovery_weight: with ``categories``, the level adds
        ``drop_weight`` x ``needs.overdue_needs`` (each regular category's lateness beyond
        ``overdue_tolerance`` of the customer's own spreads), ``new_weight`` x max(0,
        ``needs.first_purchases`` - ``new_tolerance``) and ``discovery_weight`` x max(0,
        ``needs.discovery_excess`` - ``discovery_tolerance``): the tolerances are what
        ordinary customers reach now and then. The overdue and first-purchase terms were chosen
        on the synthetic benchmark's seeds 7-11, checked on 12-15 and measured on held-out
        seeds 16-31; the discovery terms on 7-11 before (BENCHMARKS.md).
    need_min_count: a category is regular (its interval measured) when bought in this many
        sessions.
    need_intervals: the population's typical interval per category, in days
        (``needs.fit_need_intervals``, ``lens data need-intervals``), for the overdue needs:
        the categories it lists count from their second purchase, their interval shrunk
        towards it; the categories it lacks count as without it. Needs ``categories`` and
        at least one of their categories. None = each customer's own intervals only.
    overdue_tolerance: None = ``needs.TYPICAL_OVERDUE_TOLERANCE`` (1.5) with
        ``need_intervals``, ``needs.OVERDUE_TOLERANCE`` (2.0) without (each chosen on the
        synthetic benchmark with the rest of the level; ``overdue_tolerance_used``).
    new_window_days: ``first_purchases``' window, and how long the customer must have been seen
        before it.
    discovery_recent, discovery_reference: ``needs.discovery_excess``'s ``recent`` and
        ``reference`` sessions.
    departments: the catalog's category -> department (``needs.read_departments``); None = no
        department term. Needs ``categories``.
    department_weight, department_min_categories: with ``departments``, the level adds
        ``department_weight`` x ``needs.new_department_purchases`` (the purchases of the
        departments started in the novelty window with ``department_min_categories`` or more
        categories, for a customer seen ``new_window_days``). Chosen on seeds 7-31 of the
        synthetic benchmark, measured on held-out seeds 32-95 (BENCHMARKS.md).
    """

    threshold: float = 3.5
    min_history: int = 30
    window: int = 500
    min_scale: float = 0.05
    smoothing: int = 3
    min_sessions: int = 4
    novelty_window: int = 4
    established: int = 3
    novelty_weight: float = 0.85
    categories: Mapping[str, str] | None = field(default=None, repr=False)
    drop_weight: float = 0.3
    overdue_tolerance: float | None = None
    new_weight: float = 0.5
    new_tolerance: float = 2.0
    discovery_weight: float = 0.3
    discovery_tolerance: float = 1.5
    need_min_count: int = 3
    new_window_days: float = 21.0
    discovery_recent: int = 2
    discovery_reference: int = 3
    need_intervals: Mapping[str, float] | None = field(default=None, repr=False)
    departments: Mapping[str, str] | None = field(default=None, repr=False)
    department_weight: float = 0.1
    department_min_categories: int = 2

    def _check_need_intervals(self) -> None:
        intervals, categories = self.need_intervals, self.categories
        if intervals is None:
            return
        if categories is None:
            raise ConfigError("need intervals (--need-intervals, LENS_ANOMALY_NEED_INTERVALS) "
                              "are the typical intervals of the catalog's categories: set the "
                              "catalog too (--catalog, LENS_ANOMALY_CATALOG)")
        bad = {c: d for c, d in intervals.items() if not 0 < d < math.inf}
        if bad:
            raise ConfigError(f"need intervals must be positive days; got {bad}")
        if not set(intervals) & set(categories.values()):
            raise ConfigError(
                "the need intervals name none of the catalog's categories: were they fitted "
                "with another catalog? (lens data need-intervals --catalog)")

    @classmethod
    def from_settings(cls, settings: "LensSettings") -> "AnomalyConfig":
        """The configuration ``settings`` give (the worker's and ``lens anomalies``'), with the
        catalog and the need intervals read from their files. The window holds at least the
        history a cluster needs before it may alert."""
        catalog, intervals = settings.anomaly_catalog, settings.anomaly_need_intervals
        return cls(
            threshold=settings.anomaly_threshold,
            min_history=settings.anomaly_min_history,
            window=max(cls.window, settings.anomaly_min_history),
            min_sessions=settings.anomaly_min_sessions,
            novelty_window=settings.anomaly_novelty_window,
            established=settings.anomaly_established,
            categories=None if catalog is None else read_catalog(catalog),
            drop_weight=settings.anomaly_drop_weight,
            new_weight=settings.anomaly_new_weight,
            discovery_weight=settings.anomaly_discovery_weight,
            need_intervals=None if intervals is None else read_need_intervals(intervals),
            departments=None if catalog is None else read_departments(catalog),
            department_weight=settings.anomaly_department_weight,
        )

    @property
    def overdue_tolerance_used(self) -> float:
        if self.overdue_tolerance is not None:
            return self.overdue_tolerance
        return OVERDUE_TOLERANCE if self.need_intervals is None else TYPICAL_OVERDUE_TOLERANCE

    def __post_init__(self) -> None:
        counts = (self.window, self.min_history, self.smoothing, self.min_sessions,
                  self.novelty_window, self.established)
        if min(counts) < 1:
            raise ConfigError(
                "window, min_history, smoothing, min_sessions, novelty_window and established "
                "must be >= 1"
            )
        if not 0.0 <= self.novelty_weight <= 1.0:
            raise ConfigError(f"novelty_weight must be in [0, 1], got {self.novelty_weight}")
        need_terms = (self.drop_weight, self.new_weight, self.discovery_weight,
                      self.department_weight, self.overdue_tolerance_used, self.new_tolerance,
                      self.discovery_tolerance, self.new_window_days)
        if not (min(need_terms) >= 0 and math.isfinite(sum(need_terms))):
            raise ConfigError(
                "drop_weight, new_weight, discovery_weight, department_weight, the tolerances "
                f"and new_window_days must be finite and >= 0, got {need_terms}"
            )
        if self.departments is not None and self.categories is None:
            raise ConfigError("departments group the catalog's categories: set the categories too")
        if self.department_min_categories < 1:
            raise ConfigError("department_min_categories must be >= 1")
        if self.need_min_count < 2 or min(self.discovery_recent, self.discovery_reference) < 1:
            raise ConfigError(
                "need_min_count must be >= 2 (an interval), discovery_recent and "
                "discovery_reference >= 1"
            )
        self._check_need_intervals()
        if self.min_history > self.window:
            raise ConfigError(f"min_history {self.min_history} cannot exceed window {self.window}")
        if not (self.min_scale > 0 and math.isfinite(self.threshold)):
            raise ConfigError("min_scale must be > 0 and threshold finite")


@dataclass(frozen=True)
class AnomalyResult:
    """dA, the customer's level (None when the history is too short to score), dB (None while
    the cluster has fewer than ``min_history`` values, or without a level) and the alert."""

    distance: float
    level: float | None
    score: float | None
    alert: v1.AnomalyAlert | None = None


def sustained_level(
    distances: Sequence[float],
    sessions: Sequence[Sequence[str]],
    config: AnomalyConfig,
    times: Sequence[int] | None = None,
) -> float | None:
    """The level of a customer whose latest dA values are ``distances`` (oldest first, this
    session's last) and whose sessions' products are ``sessions`` (oldest first, this session
    last); None when the sessions are too few for the novelty. With ``config.categories``, the
    need-level signals are added (module docstring); they need the sessions' event ``times``
    (microseconds, same order)."""
    window, established = config.novelty_window, config.established
    new = novelty(sessions, window=window, established=established)
    if new is None:
        return None
    kept = list(distances)[-config.smoothing :]
    w = config.novelty_weight
    level = (1.0 - w) * sum(kept) / len(kept) + w * new
    if config.categories is None:
        return level
    if times is None:
        raise ValueError("the need-level signals need the sessions' times")
    needs = need_sessions(sessions, config.categories)
    purchases = purchase_days(needs, [t / MICROS_PER_DAY for t in times])
    overdue = overdue_needs(purchases, min_count=config.need_min_count,
                            tolerance=config.overdue_tolerance_used,
                            need_intervals=config.need_intervals)
    first = first_purchases(purchases, window_days=config.new_window_days,
                            min_count=config.need_min_count)
    discovered = discovery_excess(needs, recent=config.discovery_recent,
                                  reference=config.discovery_reference)
    started = 0 if config.departments is None else new_department_purchases(
        needs, config.departments, purchases, window=window,
        min_categories=config.department_min_categories, seen_days=config.new_window_days,
    )
    return (
        level
        + config.drop_weight * overdue
        + config.new_weight * max(0.0, first - config.new_tolerance)
        + config.discovery_weight * max(0.0, (discovered or 0.0) - config.discovery_tolerance)
        + config.department_weight * started
    )


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
        sessions: Sequence[Sequence[str]],
        event_time: int,
        session_index: int,
        times: Sequence[int] | None = None,
        model: v1.ModelRef | None = None,
        backfilled: bool = False,
    ) -> AnomalyResult:
        """Score one session (``event_time`` in microseconds) given the customer's previous dA
        values ``recent`` and the products of their sessions, this one included (both oldest
        first; ``times``: the sessions' event times, which the need-level signals need), and
        add its level to the cluster."""
        distance = prediction_distance(predicted, ranking, observed)
        level = sustained_level([*recent, distance], sessions, self.config, times)
        if level is None:
            return AnomalyResult(distance, None, None)
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
        """``observe`` with the prediction, recent dA values, sessions and cluster kept in
        ``state``, whose ``distances`` it updates; None when the customer has no prediction made
        before this session, or one that saw fewer than ``min_sessions`` sessions. Call it after
        the session closed (the sessionizer has added it to ``state.sessions``) and before the
        prediction that follows it replaces ``state.last_prediction``."""
        prediction = state.last_prediction
        if prediction is None or prediction.session_index >= session.session_index:
            return None
        if prediction.session_index < self.config.min_sessions:
            return None
        upto = [r for r in state.sessions if r.session_index <= session.session_index]
        result = self.observe(
            customer_id=state.customer_id,
            cluster=state.cluster,
            predicted=prediction.products,
            ranking=prediction.ranking,
            observed=[item.product_id for item in session.items],
            recent=state.distances,
            # up to this session: others may have closed with it and be scored after it
            sessions=[r.products for r in upto],
            times=[r.timestamp for r in upto],
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
