"""fk of Algorithm 1: behaviour clusters over funnel embeddings (fE), k-means with K by silhouette.

A fitted ``ClusterModel`` is just its centroids (float64 [K, D]); a customer's cluster is the
nearest centroid (squared Euclidean; ties -> lowest index), so the streaming service assigns new
embeddings without scikit-learn. Saved as JSON (exact float round trip, readable, versioned) or,
for a path ending in ``.npy``, as a NumPy array.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lens.errors import ConfigError, DataError

__all__ = ["ClusterModel", "fit_clusters"]

_FORMAT = "lens.anomaly.clusters"


@dataclass(frozen=True)
class ClusterModel:
    """Centroids float64 [K, D] of a fitted clustering; ``silhouette`` of the chosen K (nan when
    K was given or there were too few points to measure it)."""

    centroids: np.ndarray
    silhouette: float = float("nan")

    def __post_init__(self) -> None:
        c = np.asarray(self.centroids, dtype=np.float64)
        if c.ndim != 2 or len(c) == 0:
            raise DataError(f"centroids must be a non-empty [K, D] array, got shape {c.shape}")
        object.__setattr__(self, "centroids", c)

    @property
    def k(self) -> int:
        return len(self.centroids)

    @property
    def dim(self) -> int:
        return self.centroids.shape[1]

    def assign(self, embeddings: np.ndarray) -> np.ndarray:
        """Nearest-centroid cluster of each embedding: [N, D] -> int64 [N]."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DataError(f"embeddings must have shape [N, {self.dim}], got {x.shape}")
        distances = ((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)  # [N, K]
        return np.argmin(distances, axis=1).astype(np.int64)

    def assign_one(self, embedding: Sequence[float]) -> int:
        """Cluster of one embedding [D]."""
        return int(self.assign(np.asarray(embedding, dtype=np.float64)[None, :])[0])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npy":
            np.save(path, self.centroids)
        else:
            payload = {
                "format": _FORMAT,
                "version": 1,
                "silhouette": None if np.isnan(self.silhouette) else self.silhouette,
                "centroids": self.centroids.tolist(),
            }
            path.write_text(json.dumps(payload))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ClusterModel":
        path = Path(path)
        try:
            if path.suffix == ".npy":
                return cls(np.load(path))
            payload = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read cluster model {path}: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise DataError(f"{path} is not a LENS cluster model (format {_FORMAT!r}); refit it")
        silhouette = payload.get("silhouette")
        centroids = np.array(payload["centroids"], dtype=np.float64)
        return cls(centroids, float("nan") if silhouette is None else silhouette)


def fit_clusters(
    embeddings: np.ndarray,
    *,
    k: int | None = None,
    k_range: Sequence[int] = range(2, 9),
    seed: int = 0,
    silhouette_sample: int = 5000,
) -> ClusterModel:
    """Fit k-means on embeddings [N, D]: with ``k`` given, that K; else the K in ``k_range``
    (clipped to 2..N-1) with the best silhouette (ties -> smaller K). Fewer than 3 distinct
    points -> one cluster. Deterministic for a given ``seed``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"embeddings must be a non-empty [N, D] array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("embeddings contain NaN or infinity; check the model's funnel embeddings")
    distinct = len(np.unique(x, axis=0))

    def kmeans(n_clusters: int) -> KMeans:
        # Small inputs: one thread (OpenMP start-up costs more than the fit itself).
        with threadpool_limits(limits=1 if len(x) < 20_000 else None):
            return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(x)

    if k is not None:
        if not 1 <= k <= distinct:
            raise ConfigError(f"k={k} clusters needs 1 <= k <= {distinct} distinct embeddings")
        return ClusterModel(kmeans(k).cluster_centers_)
    candidates = [c for c in k_range if 2 <= c <= min(len(x) - 1, distinct)]
    if not candidates:
        return ClusterModel(x.mean(axis=0, keepdims=True))
    best: tuple[float, int, np.ndarray] | None = None
    for n_clusters in candidates:
        fitted = kmeans(n_clusters)
        if len(np.unique(fitted.labels_)) < 2:
            continue
        score = float(
            silhouette_score(
                x, fitted.labels_, sample_size=min(silhouette_sample, len(x)), random_state=seed
            )
        )
        if best is None or score > best[0]:
            best = (score, n_clusters, fitted.cluster_centers_)
    if best is None:
        return ClusterModel(x.mean(axis=0, keepdims=True))
    return ClusterModel(best[2], best[0])
