"""dB of Algorithm 1: a robust z-score of one dA against the dA values of its cluster.

    dB(x | reference) = (x - median(reference)) / max(1.4826 * MAD(reference), min_scale)

MAD is the median absolute deviation; 1.4826 * MAD estimates the standard deviation of normal
data, so dB reads like a z-score that a few outliers cannot drag (threshold 3.5 is the usual cut,
Iglewicz & Hoaglin). ``min_scale`` keeps dB finite when a cluster's distances are all equal.

``RobustWindow`` holds the last ``size`` values of one cluster for the online detector; the batch
form (``leave_one_out_scores``) scores every value against the others of its cluster, the
``j != i`` of the paper. Both use ``median``/``robust_z`` below, so they agree exactly when the
window holds the same values.
"""

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MAD_TO_SIGMA",
    "RobustWindow",
    "leave_one_out_scores",
    "mad",
    "median",
    "robust_z",
]

MAD_TO_SIGMA = 1.4826


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (mean of the two middle values for an even count)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def mad(values: Sequence[float], center: float | None = None) -> float:
    """Median absolute deviation around ``center`` (default: the median)."""
    c = median(values) if center is None else center
    return median([abs(v - c) for v in values])


def robust_z(value: float, reference: Sequence[float], *, min_scale: float) -> float:
    """dB of ``value`` against ``reference`` (which must not contain ``value``'s own record)."""
    center = median(reference)
    scale = max(MAD_TO_SIGMA * mad(reference, center), min_scale)
    return (value - center) / scale


@dataclass
class RobustWindow:
    """The last ``size`` values of a stream, kept in arrival order and sorted.

    Median is O(1), MAD O(size log size), an update O(size); at size 500 that is tens of
    microseconds. Serialises to the arrival-ordered list (about 20 bytes per value as JSON).
    """

    size: int
    _arrivals: deque = field(default_factory=deque, repr=False)
    _sorted: list = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self._arrivals)

    def add(self, value: float) -> None:
        self._arrivals.append(value)
        bisect.insort(self._sorted, value)
        if len(self._arrivals) > self.size:
            old = self._arrivals.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def values(self) -> list[float]:
        return list(self._arrivals)

    def score(self, value: float, *, min_scale: float) -> float:
        return robust_z(value, self._sorted, min_scale=min_scale)

    @classmethod
    def from_values(cls, size: int, values: Sequence[float]) -> "RobustWindow":
        window = cls(size)
        for v in values:
            window.add(float(v))
        return window


def _median_without(sorted_values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """For each rank r, the median of ``sorted_values`` with the element at position r removed.

    sorted_values: float64 [n], n >= 2; ranks: int [m] -> float64 [m].
    """
    n = len(sorted_values)
    length = n - 1

    def pick(k: int) -> np.ndarray:  # element k of the array with position r removed
        return np.where(k < ranks, sorted_values[k], sorted_values[min(k + 1, n - 1)])

    if length % 2:
        return pick(length // 2)
    return (pick(length // 2 - 1) + pick(length // 2)) / 2.0


def leave_one_out_scores(values: np.ndarray, *, min_scale: float) -> np.ndarray:
    """dB of every value against all the others: float64 [n] for values [n] (n >= 2).

    O(n log n): the leave-one-out median takes at most a few distinct values, and for each of
    them the leave-one-out MAD is again a median with one element removed.
    """
    a = np.asarray(values, dtype=np.float64)
    n = len(a)
    if n < 2:
        raise ValueError("leave-one-out scores need at least 2 values")
    order = np.argsort(a, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    centers = _median_without(a[order], ranks)  # [n]
    mads = np.empty(n, dtype=np.float64)
    for center in np.unique(centers):
        members = np.flatnonzero(centers == center)
        deviations = np.abs(a - center)  # [n]; element i's own deviation is removed below
        d_order = np.argsort(deviations, kind="stable")
        d_ranks = np.empty(n, dtype=np.int64)
        d_ranks[d_order] = np.arange(n)
        mads[members] = _median_without(deviations[d_order], d_ranks[members])
    scales = np.maximum(MAD_TO_SIGMA * mads, min_scale)
    return (a - centers) / scales
