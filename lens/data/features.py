"""Per-session features: what a model knows about a basket besides its items (paper IV.A: "products
amounts and quantities, time from previous purchase, timestamp encoding").

A session is one basket of a funnel. ``session_features`` computes the features of one funnel,
``funnel_features`` those of many at once (one vectorized pass; use it for whole data sets),
``feature_row`` one basket's row (for a live worker that encodes one customer at a time).
"""

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lens.data.basket import Basket, Funnels

__all__ = [
    "FEATURE_NAMES",
    "SessionFeatures",
    "feature_row",
    "funnel_features",
    "session_features",
]

FEATURE_NAMES = (
    "day_of_week",
    "day_of_month",
    "month",
    "day_of_week_sin",
    "day_of_week_cos",
    "day_of_month_sin",
    "day_of_month_cos",
    "month_sin",
    "month_cos",
    "days_since_previous",
    "has_previous",
    "basket_size",
    "total_quantity",
    "total_amount",
)

_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class SessionFeatures:
    """Features of one funnel's S sessions, in funnel order. Every array has shape [S]."""

    day_of_week: np.ndarray  # int8, 0 = Monday .. 6 = Sunday
    day_of_month: np.ndarray  # int8, 1..31
    days_in_month: np.ndarray  # int8, 28..31: the period of day_of_month
    month: np.ndarray  # int8, 1..12
    days_since_previous: np.ndarray  # float32, fractional days; 0.0 for the first session
    has_previous: np.ndarray  # bool, False only for the first session
    basket_size: np.ndarray  # int32, distinct items
    total_quantity: np.ndarray  # float32, units
    total_amount: np.ndarray  # float32, sales value

    def __len__(self) -> int:
        return len(self.day_of_week)

    def cyclical(self) -> np.ndarray:
        """float32 [S, 6]: (sin, cos) of day of week, day of month and month on their cycles, so
        that Sunday sits next to Monday and December next to January."""
        phases = np.stack(
            [
                self.day_of_week / 7.0,
                (self.day_of_month - 1) / self.days_in_month,
                (self.month - 1) / 12.0,
            ],
            axis=1,
        )  # [S, 3], in [0, 1)
        angles = 2.0 * np.pi * phases
        # Interleave to (sin, cos) per cycle, the order of FEATURE_NAMES.
        return np.stack([np.sin(angles), np.cos(angles)], axis=2).reshape(len(self), 6).astype(
            np.float32
        )

    def as_matrix(self) -> np.ndarray:
        """float32 [S, len(FEATURE_NAMES)], columns in FEATURE_NAMES order (unscaled)."""
        calendar = np.stack([self.day_of_week, self.day_of_month, self.month], axis=1)
        rest = np.stack(
            [
                self.days_since_previous,
                self.has_previous,
                self.basket_size,
                self.total_quantity,
                self.total_amount,
            ],
            axis=1,
        )
        return np.concatenate([calendar, self.cyclical(), rest], axis=1, dtype=np.float32)


def session_features(baskets: Sequence[Basket]) -> SessionFeatures:
    """The features of one funnel's baskets (chronological)."""
    return _features(baskets, starts=np.zeros(1, dtype=np.int64))


def funnel_features(funnels: Funnels) -> dict[str, SessionFeatures]:
    """customer id -> SessionFeatures of that customer's funnel, computed in one pass."""
    customers = list(funnels)
    lengths = np.array([len(funnels[c]) for c in customers], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    every = [basket for c in customers for basket in funnels[c]]
    features = _features(every, starts=starts)
    return {
        customer: SessionFeatures(
            **{
                f.name: getattr(features, f.name)[start : start + length]
                for f in dataclasses.fields(SessionFeatures)
            }
        )
        for customer, start, length in zip(
            customers, starts.tolist(), lengths.tolist(), strict=True
        )
    }


_CALENDAR_COLUMNS = 9  # day of week, of month, month and their (sin, cos): a function of the date
_MICROSECOND = dt.timedelta(microseconds=1)


def feature_row(basket: Basket, previous: Basket | None) -> np.ndarray:
    """float32 [len(FEATURE_NAMES)]: ``basket``'s row of ``funnel_features`` in a funnel where
    ``previous`` comes just before it (None: ``basket`` comes first), equal bit for bit (a test
    checks). A vectorized pass costs about the same for one funnel as for a thousand; this costs
    a few microseconds: the calendar columns come from a cache per date, filled by that pass
    itself, and the rest is the same float64 arithmetic, rounded to float32 once."""
    row = np.empty(len(FEATURE_NAMES), np.float32)
    row[:_CALENDAR_COLUMNS] = _calendar_row(basket.timestamp.date())
    if previous is None:
        row[_CALENDAR_COLUMNS:_CALENDAR_COLUMNS + 2] = 0.0
    else:
        seconds = (basket.timestamp - previous.timestamp) / _MICROSECOND / 1e6
        row[_CALENDAR_COLUMNS] = seconds / _SECONDS_PER_DAY
        row[_CALENDAR_COLUMNS + 1] = 1.0
    row[_CALENDAR_COLUMNS + 2] = len(basket.items)
    row[_CALENDAR_COLUMNS + 3] = sum(basket.quantities)
    row[_CALENDAR_COLUMNS + 4] = sum(basket.amounts)
    return row


@functools.lru_cache(maxsize=4096)
def _calendar_row(day: dt.date) -> np.ndarray:
    midnight = dt.datetime(day.year, day.month, day.day)
    row = session_features([Basket("", "", "", midnight, (), (), ())]).as_matrix()[0]
    calendar = row[:_CALENDAR_COLUMNS]
    calendar.flags.writeable = False  # shared by every caller of the cache
    return calendar


def _features(baskets: Sequence[Basket], *, starts: np.ndarray) -> SessionFeatures:
    """Features of concatenated funnels; ``starts`` int64 [F]: where each funnel begins."""
    stamps = np.array([b.timestamp for b in baskets], dtype="datetime64[us]")  # [S]
    days = stamps.astype("datetime64[D]")
    months = stamps.astype("datetime64[M]")
    month_starts = months.astype("datetime64[D]")
    next_month_starts = (months + 1).astype("datetime64[D]")
    gaps = np.zeros(len(baskets), dtype=np.float64)  # seconds since the previous basket
    gaps[1:] = np.diff(stamps).astype(np.float64) / 1e6
    has_previous = np.ones(len(baskets), dtype=bool)
    has_previous[starts[starts < len(baskets)]] = False
    # A funnel's first session has no previous one (the basket before it is another funnel's).
    gaps[~has_previous] = 0.0
    return SessionFeatures(
        # 1970-01-01 was a Thursday: shift by 3 so that Monday = 0.
        day_of_week=((days.astype(np.int64) + 3) % 7).astype(np.int8),
        day_of_month=((days - month_starts).astype(np.int64) + 1).astype(np.int8),
        days_in_month=(next_month_starts - month_starts).astype(np.int8),
        month=(months.astype(np.int64) % 12 + 1).astype(np.int8),
        days_since_previous=(gaps / _SECONDS_PER_DAY).astype(np.float32),
        has_previous=has_previous,
        basket_size=np.array([len(b.items) for b in baskets], dtype=np.int32),
        total_quantity=np.array([sum(b.quantities) for b in baskets], dtype=np.float32),
        total_amount=np.array([sum(b.amounts) for b in baskets], dtype=np.float32),
    )
