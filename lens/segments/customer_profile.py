"""What each behavioural segment looks like: how often its customers come, what and how much they
buy, how much of it they bought before, and when the model expects them back.

Per customer (from the whole history):
    visits               baskets
    days_between_visits  (last - first visit) / (visits - 1), in days; NaN with one visit
    basket_size          mean distinct products per basket
    spend                mean sales value per basket
    repeat_share         share of the products of baskets 2.. the customer had bought before

Per segment: customers, share (of the customers), the means of the above (days between visits:
median, the gaps are skewed; repeat share pooled over the segment's baskets), predicted_days_to_next
(mean of the time head) and top_product_segments ("segment (share of the items bought)").
"""

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lens.data.basket import Basket, Funnels
from lens.segments.customer_segments import CustomerSegments
from lens.segments.product_segments import ProductSegments

__all__ = ["customer_habits", "profile_segments"]


def customer_habits(funnel: Sequence[Basket]) -> dict[str, float]:
    """The per-customer figures of the module docstring, plus ``repeats`` and ``later_items``
    (numerator and denominator of repeat_share)."""
    visits = len(funnel)
    span_days = (funnel[-1].timestamp - funnel[0].timestamp).total_seconds() / 86400
    seen: set[str] = set(funnel[0].items)
    repeats = later_items = 0
    for basket in funnel[1:]:
        repeats += sum(item in seen for item in basket.items)
        later_items += len(basket.items)
        seen.update(basket.items)
    return {
        "visits": visits,
        "days_between_visits": span_days / (visits - 1) if visits > 1 else float("nan"),
        "basket_size": float(np.mean([len(b.items) for b in funnel])),
        "spend": float(np.mean([sum(b.amounts) for b in funnel])),
        "repeat_share": repeats / later_items if later_items else float("nan"),
        "repeats": repeats,
        "later_items": later_items,
    }


def profile_segments(
    funnels: Funnels,
    segments: CustomerSegments,
    products: ProductSegments | None = None,
    *,
    top: int = 3,
) -> pd.DataFrame:
    """One row per customer segment (columns: the module docstring); ``top_product_segments``
    only with ``products``."""
    habits = pd.DataFrame([customer_habits(funnels[c]) for c in segments.readout.customers])
    habits["segment"] = segments.labels
    habits["predicted_days_to_next"] = segments.readout.days_to_next
    rows = []
    for segment, group in habits.groupby("segment", sort=True):
        later = group["later_items"].sum()
        row = {
            "segment": int(segment),
            "customers": len(group),
            "share": len(group) / len(habits),
            "visits": group["visits"].mean(),
            "days_between_visits": group["days_between_visits"].median(),
            "basket_size": group["basket_size"].mean(),
            "spend": group["spend"].mean(),
            "repeat_share": group["repeats"].sum() / later if later else float("nan"),
            "predicted_days_to_next": group["predicted_days_to_next"].mean(),
        }
        if products is not None:
            customers = [segments.readout.customers[i] for i in group.index]
            row["top_product_segments"] = _top_product_segments(funnels, customers, products, top)
        rows.append(row)
    return pd.DataFrame(rows)


def _top_product_segments(
    funnels: Funnels, customers: Sequence[str], products: ProductSegments, top: int
) -> str:
    """ "s (share)" of the ``top`` product segments among the segmented items these customers
    bought (every basket line counts once)."""
    counts: Counter[int] = Counter()
    for customer in customers:
        for basket in funnels[customer]:
            counts.update(s for s in map(products.segment_of, basket.items) if s is not None)
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return "; ".join(f"{s} ({n / total:.0%})" for s, n in ranked)
