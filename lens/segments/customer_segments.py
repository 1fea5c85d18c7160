"""Behavioural customer segments: the clusters of Algorithm 1, profiled.

The segments are exactly the behaviour clusters the live anomaly detector uses: funnel
embeddings fE (``lens.segments.FunnelReader``, the ``funnel_embedding`` signature) clustered by
fk (``lens.anomaly.fit_clusters``, k-means with K by silhouette over the same default range), or
an existing ``ClusterModel`` file, the one ``lens worker funnel --clusters`` loads. A customer's
segment is ``ClusterModel.assign_one(fE)``, the same call the worker makes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.data.basket import Funnels
from lens.segments.embeddings import FunnelReader, FunnelReadout, Progress

__all__ = ["CustomerSegments", "segment_customers"]


@dataclass(frozen=True)
class CustomerSegments:
    """The model's readout of each customer, the clusters and each customer's segment
    ``labels`` int64 [N] (index-aligned with ``readout.customers``)."""

    readout: FunnelReadout
    model: ClusterModel
    labels: np.ndarray

    @property
    def k(self) -> int:
        return self.model.k

    @cached_property
    def _index(self) -> dict[str, int]:
        return dict(zip(self.readout.customers, self.labels.tolist(), strict=True))

    def segment_of(self, customer_id: str) -> int | None:
        """The segment of a segmented customer; None for another one."""
        return self._index.get(customer_id)

    def members(self) -> pd.DataFrame:
        """One row per customer: customer_id, segment, days_to_next (predicted)."""
        return pd.DataFrame(
            {
                "customer_id": self.readout.customers,
                "segment": self.labels,
                "days_to_next": self.readout.days_to_next,
            }
        )


def segment_customers(
    reader: FunnelReader,
    funnels: Funnels,
    *,
    clusters: ClusterModel | None = None,
    k: int | None = None,
    k_range: Sequence[int] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> CustomerSegments:
    """Read every customer with at least one basket through the model, then assign them to
    ``clusters`` or to clusters fitted on their embeddings (``k``, or the best silhouette over
    ``k_range``, by default fit_clusters' own range, the one ``detect_anomalies`` uses)."""
    histories = {c: f for c, f in funnels.items() if len(f) > 0}
    readout = reader.read(histories, progress=progress)
    if clusters is None:
        options = {} if k_range is None else {"k_range": k_range}
        clusters = fit_clusters(readout.embeddings, k=k, seed=seed, **options)
    return CustomerSegments(readout, clusters, clusters.assign(readout.embeddings))
