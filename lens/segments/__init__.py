"""Need-based product segments and behavioural customer segments from a trained LENS model (the
paper's by-products of the same end-to-end model).

- ``segment_products`` -> ``ProductSegments``: k-means over learned item embeddings, K by
  silhouette; ``ProductSegments.purity`` scores them against Ta-Feng's PRODUCT_SUBCLASS next to a
  random-embedding control (``lens.segments.purity``).
- ``segment_customers`` -> ``CustomerSegments``: the behaviour clusters of Algorithm 1 (fE + fk of
  ``lens.anomaly``); ``profile_segments`` describes each one.
- ``SegmentMap``: product / funnel embedding -> segment id from saved files (for live events).
- ``FunnelReader``, ``item_embeddings``: what the model says about customers and products.
"""

from lens.segments.catalog import (
    product_frequencies,
    read_category_departments,
    read_product_subclasses,
)
from lens.segments.customer_profile import customer_habits, profile_segments
from lens.segments.customer_segments import CustomerSegments, segment_customers
from lens.segments.embeddings import FunnelReader, FunnelReadout, item_embeddings
from lens.segments.product_segments import (
    PRODUCT_K_RANGE,
    ProductSegments,
    decoder_products,
    segment_products,
)
from lens.segments.purity import PurityReport, compare_with_random, purity
from lens.segments.segment_map import CUSTOMER_CLUSTERS_FILE, PRODUCT_MAP_FILE, SegmentMap

__all__ = [
    "CUSTOMER_CLUSTERS_FILE",
    "PRODUCT_K_RANGE",
    "PRODUCT_MAP_FILE",
    "CustomerSegments",
    "FunnelReader",
    "FunnelReadout",
    "ProductSegments",
    "PurityReport",
    "SegmentMap",
    "compare_with_random",
    "customer_habits",
    "decoder_products",
    "item_embeddings",
    "product_frequencies",
    "profile_segments",
    "purity",
    "read_category_departments",
    "read_product_subclasses",
    "segment_customers",
    "segment_products",
]
