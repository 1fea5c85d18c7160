"""Need-based product segments: k-means over the learned item embeddings.

Products bought in the same funnels for the same needs end up with nearby embeddings, so k-means
over them gives need-based segments. K is chosen like the customer clusters of Algorithm 1
(``lens.anomaly.fit_clusters``): the K of ``k_range`` with the best silhouette (ties -> smaller
K), unless ``k`` is given. The products segmented by default are the decoder's output vocabulary
(the ``output_vocab_size - 2`` most frequent training items): their embeddings are trained by the
encoder and by the decoder, while rarer items only pass through the encoder and stay close to
their random initialisation.

A segment id is the index of its centroid in ``model`` (stable for a saved segmentation).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from lens.anomaly.clustering import ClusterModel, fit_clusters
from lens.errors import ConfigError
from lens.segments.embeddings import item_embeddings
from lens.segments.purity import PurityReport, compare_with_random

__all__ = ["PRODUCT_K_RANGE", "ProductSegments", "decoder_products", "segment_products"]

# Merchandisers browse tens of segments, not two: the silhouette search starts at 5.
PRODUCT_K_RANGE = range(5, 41, 5)


@dataclass(frozen=True)
class ProductSegments:
    """``products`` [N], their embeddings float64 [N, E], the fitted centroids and each product's
    segment ``labels`` int64 [N]."""

    products: tuple[str, ...]
    embeddings: np.ndarray
    model: ClusterModel
    labels: np.ndarray

    @property
    def k(self) -> int:
        return self.model.k

    @cached_property
    def _index(self) -> dict[str, int]:
        return dict(zip(self.products, self.labels.tolist(), strict=True))

    def segment_of(self, product_id: str) -> int | None:
        """The segment of a product; None for a product that was not segmented."""
        return self._index.get(product_id)

    def mapping(self) -> dict[str, int]:
        """product -> segment, for every segmented product."""
        return dict(self._index)

    @cached_property
    def distances(self) -> np.ndarray:
        """float64 [N]: each product's Euclidean distance to its segment's centroid."""
        return np.linalg.norm(self.embeddings - self.model.centroids[self.labels], axis=1)

    def members(
        self, frequencies: Mapping[str, int], subclasses: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """One row per product: product_id, segment, distance (to the centroid), baskets (how many
        baskets hold it) and, with ``subclasses``, its subclass; by segment, then distance."""
        frame = pd.DataFrame(
            {
                "product_id": self.products,
                "segment": self.labels,
                "distance": self.distances,
                "baskets": [int(frequencies.get(p, 0)) for p in self.products],
            }
        )
        if subclasses is not None:
            frame["subclass"] = [subclasses.get(p, "") for p in self.products]
        return frame.sort_values(["segment", "distance", "product_id"], ignore_index=True)

    def summary(
        self,
        frequencies: Mapping[str, int],
        subclasses: Mapping[str, str] | None = None,
        *,
        top: int = 5,
    ) -> pd.DataFrame:
        """One row per segment: segment, products, share (of the products), baskets (summed over
        its products), representatives (the ``top`` products closest to the centroid, "id (n
        baskets)") and, with ``subclasses``, its ``top`` subclasses by share and the share of its
        majority subclass."""
        members = self.members(frequencies, subclasses)
        rows = []
        for segment, group in members.groupby("segment", sort=True):
            row = {
                "segment": int(segment),
                "products": len(group),
                "share": len(group) / len(members),
                "baskets": int(group["baskets"].sum()),
                "representatives": "; ".join(
                    f"{p} ({n})"
                    for p, n in zip(group["product_id"][:top], group["baskets"][:top], strict=True)
                ),
            }
            if subclasses is not None:
                known = group["subclass"][group["subclass"] != ""]
                shares = (
                    known.value_counts(normalize=True)
                    .sort_index()
                    .sort_values(ascending=False, kind="stable")
                )
                row["top_subclasses"] = "; ".join(f"{c} ({s:.0%})" for c, s in shares[:top].items())
                row["majority_subclass_share"] = (
                    float(shares.iloc[0]) if len(shares) else float("nan")
                )
            rows.append(row)
        return pd.DataFrame(rows)

    def purity(self, subclasses: Mapping[str, str], *, controls: int = 5) -> PurityReport | None:
        """Subclass purity of the products that have a subclass, against ``controls`` random
        embeddings (``lens.segments.purity``); None when no segmented product has a subclass."""
        keep = [i for i, p in enumerate(self.products) if p in subclasses]
        if not keep:
            return None
        classes = [subclasses[self.products[i]] for i in keep]
        return compare_with_random(
            self.labels[keep], classes, k=self.k, dim=self.embeddings.shape[1], controls=controls
        )


def decoder_products(trained) -> tuple[str, ...]:
    """The products of the decoder's output vocabulary (ids 2 .. output_vocab_size - 1)."""
    return trained.vocabulary.items[: max(trained.config.output_vocab_size - 2, 0)]


def segment_products(
    trained,
    products: Sequence[str] | None = None,
    *,
    k: int | None = None,
    k_range: Sequence[int] = PRODUCT_K_RANGE,
    seed: int = 0,
) -> ProductSegments:
    """Segment ``products`` (default: ``decoder_products``) of a TrainedLens by their learned
    embeddings: K = ``k``, or the best silhouette over ``k_range``."""
    products = tuple(products if products is not None else decoder_products(trained))
    if len(products) < 2:
        raise ConfigError(
            f"need at least 2 products to segment, got {len(products)}; train on more data"
        )
    embeddings = item_embeddings(trained, products)  # [N, E]
    model = fit_clusters(embeddings, k=k, k_range=k_range, seed=seed)
    return ProductSegments(products, embeddings, model, model.assign(embeddings))
