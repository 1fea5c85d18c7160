"""dA of Algorithm 1: how far an observed basket is from the basket the model predicted.

``basket_distance = 1 - F1(predicted, observed)`` over product sets, in [0, 1]:

- F1 is the paper's own basket metric (Section IV.D), so dA reads as "how much worse than perfect
  this prediction was for this customer", on the scale the model is judged on;
- it is symmetric and normalised for basket size: a 2-item and a 10-item basket are compared on
  the same scale, and neither missing items (recall) nor extra ones (precision) dominate;
- it needs no scores, so it applies to any model or baseline that outputs a basket.

Quantities and scores are ignored on purpose: a customer buying 3 instead of 2 units is not a
behaviour change. Both baskets empty -> 0.0; exactly one empty -> 1.0.
"""

from collections.abc import Iterable

__all__ = ["basket_distance", "f1_score"]


def f1_score(predicted: Iterable[str], observed: Iterable[str]) -> float:
    """F1 between two product sets (duplicates ignored); 1.0 when both are empty."""
    p, o = set(predicted), set(observed)
    if not p and not o:
        return 1.0
    hits = len(p & o)
    # F1 = 2PR / (P + R) = 2 |p & o| / (|p| + |o|)
    return 2.0 * hits / (len(p) + len(o))


def basket_distance(predicted: Iterable[str], observed: Iterable[str]) -> float:
    """dA = 1 - F1(predicted, observed), in [0, 1]."""
    return 1.0 - f1_score(predicted, observed)
