"""dA of Algorithm 1: how far an observed basket is from what the model predicted for it.

``prediction_distance = ½ (1 - F1(basket, observed)) + ½ miss(ranking, observed)``, in [0, 1]:

- ``1 - F1`` over product sets compares the decoded basket with the observed one on the paper's
  own basket metric (Section IV.D), normalised for basket size; it sees both missing items and
  items predicted but not bought (a need that stopped);
- ``miss`` is the share of the observed products outside the model's longer ranking (basket
  included): how much of what the customer bought the model did not expect at all (a new need,
  another segment).

Why both: single baskets are noisy, so ``1 - F1`` alone sits near its cap for ordinary sessions
(median about 0.7 on the synthetic world, with the cap at 1.0) and a robust z-score of it can
never reach an alert threshold; ``miss`` has its median far below its cap (about 0.2), so a
basket of unexpected products stands out. Measured on the demo world with a throwaway variant
of ``bench/planted_detection.py`` (see BENCHMARKS.md). Quantities and scores are ignored on purpose:
a customer buying 3 instead of 2 units is not a behaviour change.
"""

from collections.abc import Iterable

__all__ = ["basket_distance", "f1_score", "miss_rate", "prediction_distance"]


def f1_score(predicted: Iterable[str], observed: Iterable[str]) -> float:
    """F1 between two product sets (duplicates ignored); 1.0 when both are empty."""
    p, o = set(predicted), set(observed)
    if not p and not o:
        return 1.0
    hits = len(p & o)
    # F1 = 2PR / (P + R) = 2 |p & o| / (|p| + |o|)
    return 2.0 * hits / (len(p) + len(o))


def basket_distance(predicted: Iterable[str], observed: Iterable[str]) -> float:
    """1 - F1(predicted, observed), in [0, 1]; both empty -> 0.0, exactly one empty -> 1.0."""
    return 1.0 - f1_score(predicted, observed)


def miss_rate(expected: Iterable[str], observed: Iterable[str]) -> float:
    """Share of the distinct observed products not in ``expected``; 0.0 for an empty basket."""
    o = set(observed)
    return len(o - set(expected)) / len(o) if o else 0.0


def prediction_distance(
    basket: Iterable[str], ranking: Iterable[str], observed: Iterable[str]
) -> float:
    """dA = ½ (1 - F1(basket, observed)) + ½ miss(basket + ranking, observed), in [0, 1]."""
    basket, observed = list(basket), list(observed)
    return 0.5 * basket_distance(basket, observed) + 0.5 * miss_rate([*basket, *ranking], observed)
