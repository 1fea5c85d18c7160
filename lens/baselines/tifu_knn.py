"""TIFU-KNN (Hu et al., SIGIR 2020): temporal item-frequency user vectors plus nearest neighbours.

Follows the authors' ``TIFUKNN.py`` (github.com/HaojiHu/TIFUKNN, functions
``temporal_decay_sum_history``, ``group_history_list``, ``KNN`` and ``merge_history``), vectorised
with scipy sparse matrices.

User vector of a history of ``n`` baskets ``x_1..x_n`` (binary rows of width ``I``), ``g`` groups,
within decay ``r_b``, group decay ``r_g``:

- basket ``i`` is weighted ``r_b ** (n - i)``: the exponent counts baskets to the end of the whole
  history, not of the basket's group (as in the reference code);
- if ``n < g`` every basket is its own group and there are ``G = n`` groups; otherwise there
  are ``G = g`` groups of consecutive baskets, the first ``g - n % g`` holding ``n // g`` baskets
  and the rest one more;
- a group is the mean of its weighted baskets; group ``j`` (0-based, oldest first) is weighted
  ``r_g ** (g - 1 - j)`` -- with ``g``, not ``G``, so short histories are decayed as if the
  missing groups came after them (again as in the reference);
- the user vector is the sum of the weighted groups divided by ``G``.

Prediction for a customer with vector ``u``: ``alpha * u + (1 - alpha) * mean(neighbour vectors)``
over the ``k`` pool vectors nearest ``u`` in Euclidean distance; the ranking is the largest entries.

Neighbour pool. In the reference the pool is the *training* users only, each represented by the
vector of its history without its last ("future") basket; query users are disjoint from it. Here
``fit`` builds the pool the same way from every funnel it is given (``pool_drops_last=True``, the
default; False uses whole funnels). LENS's protocols also put the histories of validation and test
customers into ``train``, so they join the pool as well (as others' neighbours: a query customer
who is in the pool is never its own neighbour). On the nbr protocol (seed 0) that gives the same
Recall@10 as a pool of training customers only (0.1204 vs 0.1203). A customer without history
(the reference has none) is answered with ``(1 - alpha)`` times the mean of all pool vectors.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lens.baselines._support import (
    FlatHistory,
    ItemIndex,
    basket_size,
    flatten,
    median_basket_sizes,
    next_basket,
    ranking_length,
    top_n_rows,
)
from lens.baselines.recommender import NextBasket
from lens.data.basket import Funnels
from lens.errors import ConfigError

__all__ = ["TifuKnn", "TifuKnnSettings", "nearest_neighbours", "user_vectors"]


@dataclass(frozen=True)
class TifuKnnSettings:
    """TIFU-KNN hyper-parameters; the defaults are the paper's Ta-Feng settings."""

    n_neighbors: int = 300  # k nearest pool users averaged into the prediction
    within_decay: float = 0.9  # r_b, per basket towards the end of the history
    group_decay: float = 0.7  # r_g, per group towards the end of the history
    alpha: float = 0.7  # weight of the customer's own vector against the neighbours' mean
    n_groups: int = 7  # g, groups the history is cut into
    pool_drops_last: bool = True  # pool vectors leave each training funnel's last basket out
    block_entries: int = 16_000_000  # distance-matrix entries computed at once (x 8 bytes, x ~3)

    def __post_init__(self) -> None:
        problems = []
        if self.n_neighbors < 1:
            problems.append(f"n_neighbors={self.n_neighbors} (need >= 1)")
        if not 0.0 < self.within_decay <= 1.0:
            problems.append(f"within_decay={self.within_decay} (need 0 < r <= 1)")
        if not 0.0 < self.group_decay <= 1.0:
            problems.append(f"group_decay={self.group_decay} (need 0 < r <= 1)")
        if not 0.0 <= self.alpha <= 1.0:
            problems.append(f"alpha={self.alpha} (need 0 <= alpha <= 1)")
        if self.n_groups < 1:
            problems.append(f"n_groups={self.n_groups} (need >= 1)")
        if self.block_entries < 1:
            problems.append(f"block_entries={self.block_entries} (need >= 1)")
        if problems:
            raise ConfigError("invalid TIFU-KNN settings: " + "; ".join(problems))


def _basket_weights(flat: FlatHistory, s: TifuKnnSettings) -> np.ndarray:
    """[B] coefficient of each basket's binary row in its customer's user vector."""
    n = flat.n_baskets[flat.basket_customer]  # [B] history length of the basket's customer
    p = flat.basket_pos  # [B] 0-based position
    g = s.n_groups
    base, extra = n // g, n % g
    n_small = g - extra  # groups holding `base` baskets, before the `extra` larger ones
    short = n < g
    safe_base = np.maximum(base, 1)
    in_small = p < n_small * base
    group = np.where(
        short,
        p,
        np.where(in_small, p // safe_base, n_small + (p - n_small * base) // (base + 1)),
    )
    size = np.where(short, 1, np.where(in_small, base, base + 1))
    real_groups = np.where(short, n, g)
    return (
        np.power(s.within_decay, n - 1 - p)
        * np.power(s.group_decay, g - 1 - group)
        / size
        / real_groups
    )


def user_vectors(flat: FlatHistory, settings: TifuKnnSettings) -> sp.csr_matrix:
    """[C, I] TIFU user vectors of the flattened histories (rows without baskets are zero)."""
    weights = _basket_weights(flat, settings)  # [B]
    return sp.csr_matrix(
        (weights[flat.line_basket], (flat.line_customer, flat.line_item)),
        shape=(len(flat.customers), flat.n_items),
        dtype=np.float64,
    )


def nearest_neighbours(
    queries: sp.csr_matrix,
    query_ids: list[str],
    pool: sp.csr_matrix,
    pool_ids: list[str],
    k: int,
    block_entries: int = 16_000_000,
) -> sp.csr_matrix:
    """[Q, P] row-stochastic matrix: 1/k' at each query's k' nearest pool rows (Euclidean).

    ``queries`` [Q, I] and ``pool`` [P, I] share columns. A query whose id is in ``pool_ids`` is
    never its own neighbour, so k' = min(k, number of eligible pool rows). Squared distances are
    ranked ``block_entries`` at a time as ``|p|^2 - 2 q.p`` (sklearn's brute-force expansion, less
    the per-query constant ``|q|^2``).
    """
    n_pool = pool.shape[0]
    k = min(k, n_pool)
    pool_row = {cid: row for row, cid in enumerate(pool_ids)}
    self_col = np.array([pool_row.get(cid, -1) for cid in query_ids], dtype=np.int64)  # [Q]
    pool_t = pool.T.tocsr()  # [I, P]
    pool_sq = np.asarray(pool.multiply(pool).sum(axis=1)).ravel()  # [P]
    step = max(1, block_entries // max(n_pool, 1))
    r_idx, c_idx = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for lo in range(0, queries.shape[0] if k > 0 else 0, step):
        hi = min(lo + step, queries.shape[0])
        dist = (queries[lo:hi] @ pool_t).toarray()  # [b, P] q.p
        dist *= -2.0
        dist += pool_sq[None, :]  # [b, P] |p|^2 - 2 q.p: squared distance less |q|^2 (per row)
        mine = np.flatnonzero(self_col[lo:hi] >= 0)
        dist[mine, self_col[lo:hi][mine]] = np.inf
        if k < n_pool:
            nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]  # [b, k]
        else:
            nearest = np.broadcast_to(np.arange(n_pool), (hi - lo, n_pool))
        r, j = np.nonzero(np.isfinite(np.take_along_axis(dist, nearest, axis=1)))
        r_idx.append(r + lo)
        c_idx.append(nearest[r, j])
    rows, cols = np.concatenate(r_idx), np.concatenate(c_idx)
    counts = np.bincount(rows, minlength=queries.shape[0]).astype(np.float64)  # [Q]
    return sp.csr_matrix((1.0 / counts[rows], (rows, cols)), shape=(queries.shape[0], n_pool))


class TifuKnn:
    """TIFU-KNN next-basket recommender (see the module docstring for the exact model).

    ``items``/``scores``: the largest positive entries of the predicted vector. ``basket``: the
    top ``s`` items, ``s`` the customer's median history basket size rounded half up and clipped to
    1..10 (the training median without history).
    """

    name = "tifu-knn"

    def __init__(self, settings: TifuKnnSettings | None = None) -> None:
        self.settings = settings or TifuKnnSettings()
        self._index = ItemIndex()
        self._pool = sp.csr_matrix((0, 0))  # [P, I] pool user vectors
        self._pool_ids: list[str] = []
        self._default_size = 1

    def fit(self, train: Funnels) -> "TifuKnn":
        self._index = ItemIndex.of_funnels(train)
        flat = flatten(train, self._index, drop_last=self.settings.pool_drops_last)
        vectors = user_vectors(flat, self.settings)
        has_history = np.flatnonzero(flat.n_baskets > 0)
        self._pool = vectors[has_history].tocsr()
        self._pool_ids = [flat.customers[row] for row in has_history]
        self._default_size = basket_size(
            [len(b.items) for baskets in train.values() for b in baskets]
        )
        return self

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        index = self._index.copy()  # grown with items only the histories know; fit state intact
        for baskets in histories.values():
            for basket in baskets:
                index.add(basket.items)
        flat = flatten(histories, index)
        ranked = self._rank(flat, ranking_length(k))
        sizes = median_basket_sizes(flat, self._default_size)
        return {
            customer: next_basket(index.ids(cols), vals, int(sizes[row]))
            for row, (customer, (cols, vals)) in enumerate(zip(flat.customers, ranked))
        }

    def _rank(self, flat: FlatHistory, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per customer of ``flat``: (item columns, scores) of the ``n`` best predicted items."""
        alpha = self.settings.alpha
        queries = user_vectors(flat, self.settings)  # [C, I']
        pool = sp.csr_matrix(
            (self._pool.data, self._pool.indices, self._pool.indptr),
            shape=(self._pool.shape[0], flat.n_items),
        )  # [P, I'], the columns of items unknown to fit are zero
        if pool.shape[0] == 0:
            return top_n_rows((alpha * queries).tocsr(), n)
        empty = (np.zeros(0, np.int64), np.zeros(0))
        ranked = [empty] * len(flat.customers)
        rows = np.flatnonzero(flat.n_baskets > 0)
        chunk = max(1, self.settings.block_entries // pool.shape[0])
        for lo in range(0, len(rows), chunk):  # bounded memory: score a chunk, keep its top n
            part = rows[lo : lo + chunk]
            own = queries[part]  # [c, I']
            near = nearest_neighbours(
                own,
                [flat.customers[r] for r in part],
                pool,
                self._pool_ids,
                self.settings.n_neighbors,
                self.settings.block_entries,
            )  # [c, P]
            scores = alpha * own + (1.0 - alpha) * (near @ pool)  # [c, I']
            for r, top in zip(part, top_n_rows(scores.tocsr(), n)):
                ranked[r] = top
        if len(rows) < len(flat.customers):  # no history: (1 - alpha) * the pool's mean vector
            mean = sp.csr_matrix(pool.mean(axis=0)) * (1.0 - alpha)  # [1, I']
            fallback = top_n_rows(mean, n)[0]
            for r in np.flatnonzero(flat.n_baskets == 0):
                ranked[r] = fallback
        return ranked
