"""The paper's XGBoost classifier baseline (section IV.D, Table 2): P(item in next basket).

Candidates per customer: their own products (the ``max_history_items`` most frequent, ties to
the more recent) plus the ``n_popular`` most popular products. Each (customer, product) pair gets
the features in ``FEATURES``; the label is whether the product is in the next basket. Training
pairs come from the training funnels: each customer with at least two baskets gives one pair
(history = all baskets but the last, label basket = the last). Product statistics (popularity,
repeat rate) come from those same histories -- never from a label basket -- and are reused at
prediction time.

Ranking: candidates by predicted probability. Basket: candidates with probability >= ``threshold``,
the best 10 at most and the best one at least; ``threshold`` is chosen on the training pairs to
maximise the mean F1 of that basket against the label basket.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lens.baselines._support import (
    MAX_BASKET,
    FlatHistory,
    ItemIndex,
    flatten,
    next_basket,
    ranking_length,
)
from lens.baselines.recommender import NextBasket
from lens.data.basket import Funnels
from lens.errors import ConfigError

if TYPE_CHECKING:  # xgboost takes seconds to import: only fit() loads it
    import xgboost as xgb

__all__ = [
    "FEATURES",
    "ItemStats",
    "XGBoostBaseline",
    "XGBoostSettings",
    "best_threshold",
    "candidate_features",
    "item_stats",
]

FEATURES = (
    "in_history",  # 1 if the customer bought the product before, else 0
    "count",  # history baskets containing the product
    "share",  # count / history baskets
    "decayed_count",  # sum of decay ** (baskets after it) over the baskets containing it
    "baskets_since_last",  # baskets after the last one containing it (NaN: never bought)
    "days_since_last",  # days from its last purchase to the last history basket (NaN: never)
    "item_gap_days",  # mean days between the customer's purchases of it (NaN: bought < 2 times)
    "days_since_last_over_gap",  # days_since_last / item_gap_days (NaN where either is)
    "item_popularity",  # share of statistics baskets containing the product
    "item_customer_share",  # share of statistics customers who bought it
    "item_repeat_rate",  # of its buyers, the share who bought it in >= 2 baskets (NaN: none)
    "customer_baskets",  # history baskets of the customer
    "customer_mean_basket",  # mean distinct products per history basket (NaN: no history)
    "customer_distinct_items",  # distinct products in the history
    "customer_repeat_ratio",  # share of history basket lines that repeat an earlier purchase
    "customer_gap_days",  # mean days between history baskets (NaN: < 2 baskets)
)


@dataclass(frozen=True)
class XGBoostSettings:
    """Candidate, feature and booster settings of the XGBoost baseline."""

    max_history_items: int = 50  # own products kept as candidates per customer
    n_popular: int = 30  # globally popular products added as candidates per customer
    decay: float = 0.9  # per-basket decay of decayed_count
    max_train_rows: int = 3_000_000  # training candidate rows; customers are subsampled above
    n_estimators: int = 200
    max_depth: int = 6
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    n_threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.max_history_items < 0 or self.n_popular < 0:
            problems.append("max_history_items and n_popular must be >= 0")
        if self.max_history_items + self.n_popular < 1:
            problems.append("max_history_items + n_popular must be >= 1")
        if not 0.0 < self.decay <= 1.0:
            problems.append(f"decay={self.decay} (need 0 < decay <= 1)")
        if self.max_train_rows < 1 or self.n_estimators < 1 or self.max_depth < 1:
            problems.append("max_train_rows, n_estimators and max_depth must be >= 1")
        if self.n_threads < 1:
            problems.append(f"n_threads={self.n_threads} (need >= 1)")
        if problems:
            raise ConfigError("invalid XGBoost baseline settings: " + "; ".join(problems))


@dataclass(frozen=True)
class ItemStats:
    """Product statistics of the training histories, shared by fit and predict."""

    popularity: np.ndarray  # [I] share of baskets containing the item
    customer_share: np.ndarray  # [I] share of customers who bought it
    repeat_rate: np.ndarray  # [I] share of its buyers who bought it twice or more (NaN: none)
    ranking: np.ndarray  # [I] item columns, most popular first (ties: lower column)

    def padded(self, n_items: int) -> "ItemStats":
        """The same statistics over ``n_items`` >= I columns; new items were never seen."""
        extra = n_items - len(self.popularity)
        return ItemStats(
            popularity=np.concatenate([self.popularity, np.zeros(extra)]),
            customer_share=np.concatenate([self.customer_share, np.zeros(extra)]),
            repeat_rate=np.concatenate([self.repeat_rate, np.full(extra, np.nan)]),
            ranking=self.ranking,
        )


@dataclass(frozen=True)
class _PairTable:
    """History aggregates of every (customer, item) pair that occurs, sorted by key."""

    key: np.ndarray  # [K] customer_row * I + item_col, ascending
    count: np.ndarray  # [K] baskets containing the item
    first_pos: np.ndarray  # [K]
    last_pos: np.ndarray  # [K]
    first_day: np.ndarray  # [K]
    last_day: np.ndarray  # [K]
    decayed: np.ndarray  # [K]


def _pair_table(flat: FlatHistory, decay: float) -> _PairTable:
    n_items = max(flat.n_items, 1)
    cust = flat.line_customer  # [L]
    pos = flat.basket_pos[flat.line_basket]  # [L]
    day = flat.basket_day[flat.line_basket]  # [L]
    weight = np.power(decay, flat.n_baskets[cust] - 1 - pos)  # [L]
    key = cust * n_items + flat.line_item  # [L]
    order = np.lexsort((pos, key))
    key, pos, day, weight = key[order], pos[order], day[order], weight[order]
    uniq, starts = np.unique(key, return_index=True)
    ends = np.append(starts[1:], len(key)) - 1
    return _PairTable(
        key=uniq,
        count=(ends - starts + 1).astype(np.float64),
        first_pos=pos[starts],
        last_pos=pos[ends],
        first_day=day[starts],
        last_day=day[ends],
        decayed=np.add.reduceat(weight, starts) if len(starts) else np.zeros(0),
    )


def item_stats(flat: FlatHistory) -> ItemStats:
    """Popularity, customer share and repeat rate of every item column of ``flat``."""
    pairs = _pair_table(flat, 1.0)
    n_items = flat.n_items
    n_baskets = max(len(flat.basket_customer), 1)
    n_customers = max(int(np.count_nonzero(flat.n_baskets)), 1)
    basket_count = np.bincount(flat.line_item, minlength=n_items).astype(np.float64)
    pair_item = pairs.key % max(n_items, 1)
    buyers = np.bincount(pair_item, minlength=n_items).astype(np.float64)
    repeaters = np.bincount(pair_item, weights=pairs.count >= 2, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        repeat_rate = np.where(buyers > 0, repeaters / buyers, np.nan)
    return ItemStats(
        popularity=basket_count / n_baskets,
        customer_share=buyers / n_customers,
        repeat_rate=repeat_rate,
        ranking=np.lexsort((np.arange(n_items), -basket_count)),
    )


def candidate_features(
    flat: FlatHistory, stats: ItemStats, settings: XGBoostSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of every customer of ``flat`` and their features.

    Returns ``(customer_row [N], item_col [N], features [N, len(FEATURES)] float32)``, sorted by
    customer row. ``stats`` must cover ``flat.n_items`` columns.
    """
    n_items = max(flat.n_items, 1)
    n_cust = len(flat.customers)
    pairs = _pair_table(flat, settings.decay)
    pair_cust = pairs.key // n_items

    # Own products: the max_history_items most frequent, ties to the more recent.
    order = np.lexsort((pairs.key % n_items, -pairs.last_pos, -pairs.count, pair_cust))
    starts = np.searchsorted(pair_cust[order], np.arange(n_cust))
    rank = np.arange(len(order)) - starts[pair_cust[order]]
    own = pairs.key[order[rank < settings.max_history_items]]
    popular = stats.ranking[: settings.n_popular]
    pop_keys = (np.arange(n_cust)[:, None] * n_items + popular[None, :]).ravel()
    keys = np.unique(np.concatenate([own, pop_keys]))  # [N], sorted => grouped by customer
    cust, item = keys // n_items, keys % n_items

    at = np.minimum(np.searchsorted(pairs.key, keys), max(len(pairs.key) - 1, 0))
    found = (pairs.key[at] == keys) if len(pairs.key) else np.zeros(len(keys), dtype=bool)

    def pair_value(values: np.ndarray, missing: float) -> np.ndarray:
        out = np.full(len(keys), missing, dtype=np.float64)
        out[found] = values[at[found]]
        return out

    # Customer statistics [C].
    n_b = flat.n_baskets.astype(np.float64)
    sizes = np.bincount(flat.basket_customer, weights=flat.basket_size, minlength=n_cust)
    lines = np.bincount(flat.line_customer, minlength=n_cust).astype(np.float64)
    distinct = np.bincount(pair_cust, minlength=n_cust).astype(np.float64)
    last_day = np.full(n_cust, -np.inf)  # [C]
    first_day = np.full(n_cust, np.inf)  # [C]
    np.maximum.at(last_day, flat.basket_customer, flat.basket_day)
    np.minimum.at(first_day, flat.basket_customer, flat.basket_day)
    last_day[n_b == 0] = np.nan
    first_day[n_b == 0] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_basket = np.where(n_b > 0, sizes / np.maximum(n_b, 1), np.nan)
        repeat_ratio = np.where(lines > 0, (lines - distinct) / np.maximum(lines, 1), np.nan)
        gap = np.where(n_b >= 2, (last_day - first_day) / np.maximum(n_b - 1, 1), np.nan)

        count = pair_value(pairs.count, 0.0)
        last_pos = pair_value(pairs.last_pos.astype(np.float64), np.nan)
        item_last = pair_value(pairs.last_day, np.nan)
        item_first = pair_value(pairs.first_day, np.nan)
        since_days = last_day[cust] - item_last
        item_gap = np.where(count >= 2, (item_last - item_first) / np.maximum(count - 1, 1), np.nan)
        features = np.column_stack(
            [
                (count > 0).astype(np.float64),
                count,
                count / np.maximum(n_b[cust], 1),
                pair_value(pairs.decayed, 0.0),
                n_b[cust] - 1 - last_pos,
                since_days,
                item_gap,
                np.where(item_gap > 0, since_days / item_gap, np.nan),
                stats.popularity[item],
                stats.customer_share[item],
                stats.repeat_rate[item],
                n_b[cust],
                mean_basket[cust],
                distinct[cust],
                repeat_ratio[cust],
                gap[cust],
            ]
        ).astype(np.float32)  # [N, F]
    return cust, item, features


def best_threshold(
    probs: np.ndarray, hits: np.ndarray, cust: np.ndarray, target_sizes: np.ndarray
) -> tuple[float, float]:
    """The probability threshold maximising mean F1 of the thresholded basket, and that F1.

    ``probs``/``hits`` [N]: each candidate's probability and whether it is in the label basket;
    ``cust`` [N]: its customer row (sorted); ``target_sizes`` [C]: label basket sizes (> 0). A
    customer's basket is their candidates with probability >= t, the best 10 at most, 1 at least.
    """
    n_cust = len(target_sizes)
    order = np.lexsort((-probs, cust))
    cust_s = cust[order]
    starts = np.searchsorted(cust_s, np.arange(n_cust))
    rank = np.arange(len(order)) - starts[cust_s]
    top = rank < MAX_BASKET
    p_top = np.full((n_cust, MAX_BASKET), -np.inf)  # [C, 10], best first
    h_top = np.zeros((n_cust, MAX_BASKET))
    p_top[cust_s[top], rank[top]] = probs[order][top]
    h_top[cust_s[top], rank[top]] = hits[order][top]
    cum_hits = np.cumsum(h_top, axis=1)  # [C, 10]
    grid = np.unique(np.quantile(p_top[np.isfinite(p_top)], np.linspace(0.0, 1.0, 201)))
    best_t, best_f1 = 1.0, -1.0
    for t in grid:
        size = np.clip((p_top >= t).sum(axis=1), 1, MAX_BASKET)  # [C]
        got = cum_hits[np.arange(n_cust), size - 1]
        f1 = float(np.mean(2.0 * got / (size + target_sizes)))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t, best_f1


class XGBoostBaseline:
    """The paper's XGBoostClassifier baseline (see the module docstring).

    ``items``/``scores``: candidates by predicted probability (up to max_history_items + n_popular
    of them). ``basket``: probability >= the fitted ``threshold``, 1..10 items.
    """

    name = "xgboost"

    def __init__(self, settings: XGBoostSettings | None = None) -> None:
        self.settings = settings or XGBoostSettings()
        self.threshold = 0.5
        self.train_f1 = float("nan")  # mean F1 of the thresholded basket on the training pairs
        self._index = ItemIndex()
        self._stats: ItemStats | None = None
        self._model: "xgb.XGBClassifier | None" = None

    def fit(self, train: Funnels) -> "XGBoostBaseline":
        import xgboost as xgb

        s = self.settings
        self._index = ItemIndex.of_funnels(train)
        pairs = {cid: baskets for cid, baskets in train.items() if len(baskets) >= 2}
        if not pairs:
            raise ConfigError(
                "the XGBoost baseline needs training customers with at least two baskets "
                "(history + next basket); pass longer training funnels"
            )
        flat = flatten(pairs, self._index, drop_last=True)
        self._stats = item_stats(flat)
        cust, item, x = candidate_features(flat, self._stats, s)
        rows_per_customer = len(cust) / max(len(flat.customers), 1)
        if len(cust) > s.max_train_rows:
            rng = np.random.default_rng(s.seed)
            n_keep = max(1, int(s.max_train_rows / rows_per_customer))
            keep_rows = np.sort(rng.choice(len(flat.customers), n_keep, replace=False))
            kept = {flat.customers[r] for r in keep_rows}
            pairs = {cid: baskets for cid, baskets in pairs.items() if cid in kept}
            flat = flatten(pairs, self._index, drop_last=True)
            cust, item, x = candidate_features(flat, self._stats, s)
        n_items = max(len(self._index), 1)
        label_keys = np.array(
            [
                row * n_items + self._index.col(i)
                for row, cid in enumerate(flat.customers)
                for i in pairs[cid][-1].items
            ],
            dtype=np.int64,
        )
        y = np.isin(cust * n_items + item, label_keys).astype(np.float32)  # [N]
        self._model = xgb.XGBClassifier(
            tree_method="hist",
            n_estimators=s.n_estimators,
            max_depth=s.max_depth,
            learning_rate=s.learning_rate,
            subsample=s.subsample,
            colsample_bytree=s.colsample_bytree,
            n_jobs=s.n_threads,
            random_state=s.seed,
            eval_metric="logloss",
        )
        self._model.fit(x, y)
        probs = self._model.predict_proba(x)[:, 1]
        target_sizes = np.array([len(pairs[cid][-1].items) for cid in flat.customers], float)
        self.threshold, self.train_f1 = best_threshold(probs, y, cust, target_sizes)
        return self

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        if self._model is None or self._stats is None:
            raise ConfigError("XGBoostBaseline.predict called before fit; call fit(train) first")
        n = ranking_length(k)
        index = self._index.copy()  # grown with items only the histories know; fit state intact
        for baskets in histories.values():
            for basket in baskets:
                index.add(basket.items)
        flat = flatten(histories, index)
        cust, item, x = candidate_features(flat, self._stats.padded(len(index)), self.settings)
        probs = self._model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)
        order = np.lexsort((item, -probs, cust))
        bounds = np.searchsorted(cust[order], np.arange(len(flat.customers) + 1))
        out = {}
        for row, customer in enumerate(flat.customers):
            mine = order[bounds[row] : bounds[row + 1]][:n]
            p = probs[mine]
            size = int(np.clip(np.count_nonzero(p >= self.threshold), 1, MAX_BASKET))
            out[customer] = next_basket(index.ids(item[mine]), p, size)
        return out
