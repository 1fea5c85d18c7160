"""Behaviour anomaly detection (paper, Algorithm 1), online and batch with the same dA and dB.

- ``prediction_distance`` (dA): ½ (1 - F1 of the predicted basket) + ½ (share of the observed
  products outside the predicted ranking), in [0, 1]; ``basket_distance`` is its first part.
- ``novelty``: share of the products of a customer's latest sessions new to their repertoire;
  ``sustained_level`` blends it with the mean of their latest dA into the level that is scored,
  and with a product catalog (``read_catalog``) adds the need-level ``overdue_needs`` (regular
  categories late, in units of the customer's own regularity), ``first_purchases`` (categories
  long gone without, first bought lately) and ``discovery_excess`` (a burst of first purchases
  beyond the customer's own pace), and with the catalog's departments (``read_departments``)
  ``new_department_purchases`` (the purchases of the departments started with several of
  their categories);
  ``fit_need_intervals`` gives the overdue needs each category's typical interval in the
  population (``read_need_intervals`` / ``write_need_intervals``).
- ``robust_z`` (dB): robust z-score of a customer's level against the same cluster's.
- ``AnomalyDetector``: per-cluster windows for the stream; ``detect_anomalies`` for a batch, over
  ``funnel_observations`` (each customer's last session vs the prediction from the ones before).
- ``ClusterModel``/``fit_clusters`` (fk): k-means centroids over funnel embeddings.
"""

from lens.anomaly.batch import (
    BatchAnomalies,
    Embedder,
    FunnelObservation,
    ObservedFunnels,
    detect_anomalies,
    funnel_observations,
    split_last_sessions,
)
from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.anomaly.detector import AnomalyConfig, AnomalyDetector, AnomalyResult, sustained_level
from lens.anomaly.distance import basket_distance, f1_score, miss_rate, prediction_distance
from lens.anomaly.needs import (
    FIT_MIN_COUNT,
    FIT_MIN_CUSTOMERS,
    discovery_excess,
    first_purchases,
    fit_need_intervals,
    need_sessions,
    new_department_purchases,
    overdue_needs,
    purchase_days,
    read_catalog,
    read_departments,
    read_need_intervals,
    write_need_intervals,
)
from lens.anomaly.repertoire import novelty
from lens.anomaly.robust import RobustWindow, leave_one_out_scores, mad, median, robust_z

__all__ = [
    "FIT_MIN_COUNT",
    "FIT_MIN_CUSTOMERS",
    "AnomalyConfig",
    "AnomalyDetector",
    "AnomalyResult",
    "BatchAnomalies",
    "ClusterModel",
    "Embedder",
    "FunnelObservation",
    "ObservedFunnels",
    "RobustWindow",
    "basket_distance",
    "detect_anomalies",
    "discovery_excess",
    "f1_score",
    "first_purchases",
    "fit_clusters",
    "fit_need_intervals",
    "funnel_observations",
    "leave_one_out_scores",
    "mad",
    "median",
    "miss_rate",
    "need_sessions",
    "new_department_purchases",
    "novelty",
    "overdue_needs",
    "prediction_distance",
    "purchase_days",
    "read_catalog",
    "read_departments",
    "read_need_intervals",
    "robust_z",
    "split_last_sessions",
    "sustained_level",
    "write_need_intervals",
]
