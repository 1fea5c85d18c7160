"""Algorithm 1 in batch over the customer segments: each customer's last basket against the
basket the model predicted from the ones before it, scored within the customer's segment.

The clusters are the customer segments' ``ClusterModel``, so a customer's anomaly score is
computed among the same customers the segment profile describes, as the live detector would.
"""

import pandas as pd

from lens.anomaly import (
    AnomalyConfig,
    BatchAnomalies,
    ClusterModel,
    detect_anomalies,
    funnel_observations,
    split_last_sessions,
)
from lens.data.basket import Funnels
from lens.segments.embeddings import FunnelReader, Progress

__all__ = ["anomaly_table", "customer_anomalies"]


def customer_anomalies(
    reader: FunnelReader,
    funnels: Funnels,
    clusters: ClusterModel,
    config: AnomalyConfig = AnomalyConfig(),
    *,
    progress: Progress | None = None,
) -> BatchAnomalies:
    """dA, level and dB of every customer with enough sessions, as ``lens anomalies
    --clusters`` computes them with this model; fE comes from ``reader``."""
    from lens.model import LensRecommender

    observations = funnel_observations(
        split_last_sessions(funnels, min_sessions=config.min_sessions),
        LensRecommender(trained=reader.trained),
        embed=lambda histories: reader.read(histories, progress=progress).embeddings,
        config=config,
    )
    return detect_anomalies(observations, clusters=clusters, config=config)


def anomaly_table(anomalies: BatchAnomalies) -> pd.DataFrame:
    """customer_id, segment, distance (dA of the last session), level (dA smoothed over the
    latest sessions), score (dB, NaN while the segment is too small), alert; highest score
    first."""
    table = pd.DataFrame(
        {
            "customer_id": anomalies.customers,
            "segment": anomalies.clusters,
            "distance": anomalies.distances,
            "level": anomalies.levels,
            "score": anomalies.scores,
            "alert": anomalies.scores > anomalies.threshold,
        }
    )
    return table.sort_values(
        ["score", "customer_id"], ascending=[False, True], na_position="last", ignore_index=True
    )
