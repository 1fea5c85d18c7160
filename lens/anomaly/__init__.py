"""Behaviour anomaly detection (paper, Algorithm 1), online and batch with the same dA and dB.

- ``basket_distance`` (dA): 1 - F1 between predicted and observed products, in [0, 1].
- ``robust_z`` (dB): robust z-score of a dA against the dA of the same cluster.
- ``AnomalyDetector``: per-cluster windows for the stream; ``detect_anomalies`` for a batch.
- ``ClusterModel``/``fit_clusters`` (fk): k-means centroids over funnel embeddings.
"""

from lens.anomaly.batch import BatchAnomalies, FunnelObservation, detect_anomalies
from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.anomaly.detector import AnomalyConfig, AnomalyDetector, AnomalyResult
from lens.anomaly.distance import basket_distance, f1_score
from lens.anomaly.robust import RobustWindow, leave_one_out_scores, mad, median, robust_z

__all__ = [
    "AnomalyConfig",
    "AnomalyDetector",
    "AnomalyResult",
    "BatchAnomalies",
    "ClusterModel",
    "FunnelObservation",
    "RobustWindow",
    "basket_distance",
    "detect_anomalies",
    "f1_score",
    "fit_clusters",
    "leave_one_out_scores",
    "mad",
    "median",
    "robust_z",
]
