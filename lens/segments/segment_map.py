"""The segment ids for live events: product -> product segment, funnel embedding -> customer
segment, from the files ``lens segments`` writes, with no scikit-learn or model at hand.

    segments = SegmentMap.load("runs/lens/segments")
    segments.product_segment("4710199010372")    # int, or None for a product not segmented
    segments.customer_segment(embedding)         # int: ClusterModel.assign_one, as Algorithm 1

Files in the directory: ``product_segment_map.json`` (format ``lens.segments.products``) and
``customer_clusters.json`` (a ``lens.anomaly.ClusterModel``, also usable as
``lens worker funnel --clusters``). Either may be missing; asking for it then raises ConfigError.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lens.anomaly.clustering import ClusterModel
from lens.errors import ConfigError, DataError

__all__ = ["CUSTOMER_CLUSTERS_FILE", "PRODUCT_MAP_FILE", "SegmentMap"]

PRODUCT_MAP_FILE = "product_segment_map.json"
CUSTOMER_CLUSTERS_FILE = "customer_clusters.json"
_FORMAT = "lens.segments.products"


@dataclass(frozen=True)
class SegmentMap:
    products: Mapping[str, int] | None = None
    clusters: ClusterModel | None = field(default=None)

    def product_segment(self, product_id: str) -> int | None:
        """The product's segment id; None for a product outside the segmentation."""
        if self.products is None:
            raise ConfigError(
                f"no product segments loaded: run `lens segments products` ({PRODUCT_MAP_FILE})"
            )
        return self.products.get(product_id)

    def customer_segment(self, embedding: Sequence[float]) -> int:
        """The segment id of a funnel embedding [H] (the model's ``funnel_embedding`` output)."""
        if self.clusters is None:
            raise ConfigError(
                "no customer segments loaded: run `lens segments customers` "
                f"({CUSTOMER_CLUSTERS_FILE})"
            )
        return self.clusters.assign_one(embedding)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.products is not None:
            payload = {"format": _FORMAT, "version": 1, "segments": dict(self.products)}
            (directory / PRODUCT_MAP_FILE).write_text(json.dumps(payload))
        if self.clusters is not None:
            self.clusters.save(directory / CUSTOMER_CLUSTERS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "SegmentMap":
        """From the ``--out`` folder of ``lens segments`` (or one of its two files)."""
        directory = Path(directory)
        if directory.is_file():
            directory = directory.parent
        product_path, clusters_path = (
            directory / PRODUCT_MAP_FILE,
            directory / CUSTOMER_CLUSTERS_FILE,
        )
        if not (product_path.is_file() or clusters_path.is_file()):
            raise ConfigError(
                f"{directory}: neither {PRODUCT_MAP_FILE} nor {CUSTOMER_CLUSTERS_FILE}; "
                "pass the --out directory of `lens segments`."
            )
        products = None
        if product_path.is_file():
            try:
                payload = json.loads(product_path.read_text())
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read {product_path}: {exc}") from exc
            if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
                raise DataError(f"{product_path} is not a product segment map (format {_FORMAT!r})")
            products = {str(p): int(s) for p, s in payload["segments"].items()}
        clusters = ClusterModel.load(clusters_path) if clusters_path.is_file() else None
        return cls(products, clusters)
