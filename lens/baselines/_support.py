"""Plumbing the baselines share: item indexing, flattened histories, basket sizes, top-n.

Private to ``lens.baselines``: nothing here is re-exported. Shapes use ``C`` customers,
``B`` baskets, ``L`` basket lines (one per distinct item in a basket) and ``I`` items.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lens.baselines.recommender import NextBasket
from lens.data.basket import Basket, Funnels
from lens.errors import ConfigError

MIN_RANKING = 20
"""Every baseline ranks at least this many items when it can (``NextBasket.items``)."""

MAX_BASKET = 10
"""The variable-size ``NextBasket.basket`` never holds more items than this."""


def ranking_length(k: int) -> int:
    """How many items to rank when the caller asks for ``k``: ``k``, but never under 20."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}; ask for the ranking length you evaluate")
    return max(k, MIN_RANKING)


def basket_size(sizes: Sequence[int] | np.ndarray) -> int:
    """The variable basket size of the frequency-style baselines.

    The median of the given basket sizes (distinct items per basket), rounded half up and clipped
    to ``1..MAX_BASKET``; 1 when there are no baskets.
    """
    if len(sizes) == 0:
        return 1
    median = float(np.median(np.asarray(sizes, dtype=np.float64)))
    return int(min(MAX_BASKET, max(1, np.floor(median + 0.5))))


def day_number(basket: Basket) -> float:
    """The basket's time as a day count (proleptic ordinal plus the fraction of the day)."""
    ts = basket.timestamp
    return ts.toordinal() + (ts.hour * 3600 + ts.minute * 60 + ts.second) / 86400.0


class ItemIndex:
    """A bijection between product ids (strings) and column numbers ``0..I-1``.

    Columns are given in first-seen order, so equal inputs always give equal indexes.
    """

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._ids: list[str] = []
        self._col: dict[str, int] = {}
        self.add(items)

    def add(self, items: Iterable[str]) -> None:
        for item in items:
            if item not in self._col:
                self._col[item] = len(self._ids)
                self._ids.append(item)

    @classmethod
    def of_funnels(cls, funnels: Funnels) -> "ItemIndex":
        index = cls()
        for baskets in funnels.values():
            for basket in baskets:
                index.add(basket.items)
        return index

    def copy(self) -> "ItemIndex":
        other = ItemIndex()
        other._ids = list(self._ids)
        other._col = dict(self._col)
        return other

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._col

    def col(self, item: str) -> int:
        return self._col[item]

    def ids(self, cols: Iterable[int]) -> list[str]:
        return [self._ids[c] for c in cols]


@dataclass(frozen=True)
class FlatHistory:
    """Funnels as flat arrays, one row per basket and one per basket line.

    Only items in the index appear in ``line_item``; a basket whose items are all unknown keeps
    its row (its lines are simply absent), so basket positions stay those of the funnel.
    """

    customers: list[str]  # [C] customer ids, in funnel order
    n_baskets: np.ndarray  # [C] int64, baskets per customer
    basket_customer: np.ndarray  # [B] int64, customer row of each basket
    basket_pos: np.ndarray  # [B] int64, 0-based position within its customer's funnel
    basket_day: np.ndarray  # [B] float64, day_number of the basket
    basket_size: np.ndarray  # [B] int64, distinct items in the basket (known or not)
    line_basket: np.ndarray  # [L] int64, basket row of each line
    line_item: np.ndarray  # [L] int64, item column of each line
    n_items: int  # I, columns of the index used

    @property
    def line_customer(self) -> np.ndarray:  # [L]
        return self.basket_customer[self.line_basket]


def flatten(funnels: Funnels, index: ItemIndex, drop_last: bool = False) -> FlatHistory:
    """Flatten ``funnels`` against ``index``; ``drop_last`` leaves each funnel's last basket out."""
    customers: list[str] = []
    n_baskets: list[int] = []
    b_cust: list[int] = []
    b_pos: list[int] = []
    b_day: list[float] = []
    b_size: list[int] = []
    l_basket: list[int] = []
    l_item: list[int] = []
    for row, (customer, baskets) in enumerate(funnels.items()):
        customers.append(customer)
        kept = baskets[:-1] if drop_last else baskets
        n_baskets.append(len(kept))
        for pos, basket in enumerate(kept):
            b = len(b_cust)
            b_cust.append(row)
            b_pos.append(pos)
            b_day.append(day_number(basket))
            b_size.append(len(basket.items))
            for item in basket.items:
                if item in index:
                    l_basket.append(b)
                    l_item.append(index.col(item))
    return FlatHistory(
        customers=customers,
        n_baskets=np.asarray(n_baskets, dtype=np.int64),
        basket_customer=np.asarray(b_cust, dtype=np.int64),
        basket_pos=np.asarray(b_pos, dtype=np.int64),
        basket_day=np.asarray(b_day, dtype=np.float64),
        basket_size=np.asarray(b_size, dtype=np.int64),
        line_basket=np.asarray(l_basket, dtype=np.int64),
        line_item=np.asarray(l_item, dtype=np.int64),
        n_items=len(index),
    )


def median_basket_sizes(flat: FlatHistory, default: int) -> np.ndarray:
    """[C] ``basket_size`` of each customer's baskets; ``default`` for customers without any."""
    out = np.full(len(flat.customers), default, dtype=np.int64)
    order = np.argsort(flat.basket_customer, kind="stable")
    bounds = np.searchsorted(flat.basket_customer[order], np.arange(len(flat.customers) + 1))
    sizes = flat.basket_size[order]
    for row in range(len(flat.customers)):
        lo, hi = bounds[row], bounds[row + 1]
        if hi > lo:
            out[row] = basket_size(sizes[lo:hi])
    return out


def top_n_rows(scores: sp.csr_matrix, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row of ``scores`` [R, I]: (columns, values) of its ``n`` largest stored positive entries.

    Best first; equal scores go to the lower column. Rows with fewer positive entries give fewer.
    """
    scores = scores.tocsr()
    out = []
    for row in range(scores.shape[0]):
        lo, hi = scores.indptr[row], scores.indptr[row + 1]
        cols = scores.indices[lo:hi]
        vals = scores.data[lo:hi]
        keep = vals > 0
        cols, vals = cols[keep], vals[keep]
        if len(vals) > n:
            # Keep every entry tied with the n-th best so the tie-break below sees them all.
            cut = np.partition(vals, len(vals) - n)[len(vals) - n]
            keep = vals >= cut
            cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:n]
        out.append((cols[order], vals[order]))
    return out


def next_basket(items: Sequence[str], scores: Sequence[float], size: int) -> NextBasket:
    """A ``NextBasket`` whose basket is the first ``size`` (<= MAX_BASKET) ranked items."""
    size = min(size, MAX_BASKET)
    return NextBasket(
        items=tuple(items), scores=tuple(float(s) for s in scores), basket=tuple(items[:size])
    )
