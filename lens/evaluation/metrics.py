"""Metrics of next-basket predictions against each customer's true next basket T.

Ranking metrics, on the top k of a customer's ranked list R (k in KS = 10, 20):

    recall@k = |R[:k] & T| / |T|
    ndcg@k   = DCG@k / IDCG@k, binary gain: DCG@k = sum over j < k with R[j] in T of 1/log2(j + 2),
               IDCG@k = sum over j < min(|T|, k) of 1/log2(j + 2), the best DCG any ranking can
               reach (Li et al.'s code sums |T| positions, even past k, so their NDCG of a basket
               larger than k stays below 1 for a perfect ranking)
    phr@k    = 1 when R[:k] & T is not empty (personal hit ratio)

each averaged over customers. Repeat / explore: T splits into its repeat part (items the customer
bought in their history) and explore part (the rest). ``recall@k:repeat`` = |R[:k] & T_repeat| /
|T_repeat|, averaged over the customers whose T_repeat is not empty; ``ndcg@k:repeat`` and
``phr@k:repeat`` likewise take T_repeat as the truth (R keeps its positions); ``...:explore`` the
same with T_explore. A part no customer has averages to NaN.

Basket metrics, on the variable-size predicted basket B (the first BASKET_CAP = 10 items count):

    basket:precision / basket:recall / basket:f1 — per customer |B & T| / |B| (0 when B is empty),
        |B & T| / |T| and their harmonic mean (0 when both are 0), each averaged over customers.
    paper:recall / paper:precision / paper:f1 — the LENS paper's Table 2: recall as above,
        "precision" = hit ratio = share of customers with |B & T| >= 1, and F1 = 2RP / (R + P) of
        those two averages (e.g. 2 * 0.1255 * 0.4032 / (0.1255 + 0.4032) = 0.1914).

Item lists are deduplicated (first occurrence kept) before scoring.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BASKET_CAP",
    "KS",
    "Relevance",
    "basket_metrics",
    "judge",
    "ndcg_at_k",
    "phr_at_k",
    "ranking_metrics",
    "recall_at_k",
]

KS = (10, 20)
BASKET_CAP = 10


@dataclass(frozen=True)
class Relevance:
    """Which predicted items are right, for n customers (rows). Built by ``judge``."""

    ranked_hits: np.ndarray  # bool [n, depth]: ranked[i][j] is in truth i (False past the list)
    ranked_seen: np.ndarray  # bool [n, depth]: ranked[i][j] is in customer i's history items
    basket_hits: np.ndarray  # bool [n, BASKET_CAP]: basket[i][j] is in truth i
    basket_sizes: np.ndarray  # int64 [n]: predicted basket sizes (<= BASKET_CAP)
    truth_sizes: np.ndarray  # int64 [n]: |T|, > 0
    repeat_sizes: np.ndarray  # int64 [n]: |T & history|

    def __len__(self) -> int:
        return len(self.truth_sizes)


def judge(
    truth: Sequence[Collection[str]],
    ranked: Sequence[Sequence[str]],
    baskets: Sequence[Sequence[str]],
    history: Sequence[Iterable[str]],
    *,
    depth: int = max(KS),
) -> Relevance:
    """Mark the hits of n customers' predictions (row i of every argument is customer i).

    ``truth``: true next-basket items (non-empty); ``ranked``: ranked lists (the first ``depth``
    count); ``baskets``: predicted baskets (the first BASKET_CAP count); ``history``: the items of
    each customer's history baskets (for the repeat/explore split).
    """
    if not len(truth) == len(ranked) == len(baskets) == len(history):
        raise ValueError("truth, ranked, baskets and history need one row per customer")
    index: dict[str, int] = {}  # item -> code, for the items in truth and predictions only
    truth_rows, truth_codes = _flat_codes(truth, index)
    ranked_codes = _padded_codes(ranked, index, depth)  # [n, depth], -1 = no item
    basket_codes = _padded_codes(baskets, index, BASKET_CAP)  # [n, BASKET_CAP]
    history_rows, history_codes = _flat_codes(history, index, known_only=True)
    truth_sizes = np.bincount(truth_rows, minlength=len(truth))
    if (truth_sizes == 0).any():
        raise ValueError("every customer needs a non-empty true basket")
    # An item of row i is encoded as the int64 key i * (number of codes) + code.
    stride = max(len(index), 1)
    truth_keys = truth_rows * stride + truth_codes
    history_keys = history_rows * stride + history_codes
    rows = np.arange(len(truth), dtype=np.int64)[:, None]

    def member(codes: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return (codes >= 0) & np.isin(rows * stride + codes, keys)

    return Relevance(
        ranked_hits=member(ranked_codes, truth_keys),
        ranked_seen=member(ranked_codes, history_keys),
        basket_hits=member(basket_codes, truth_keys),
        basket_sizes=(basket_codes >= 0).sum(axis=1),
        truth_sizes=truth_sizes,
        repeat_sizes=np.bincount(
            truth_rows[np.isin(truth_keys, history_keys)], minlength=len(truth)
        ),
    )


def recall_at_k(hits: np.ndarray, truth_sizes: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: hits in the top k / |T|. ``hits``: bool [n, >= k]; ``truth_sizes``: [n] > 0."""
    return hits[:, :k].sum(axis=1) / truth_sizes


def ndcg_at_k(hits: np.ndarray, truth_sizes: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: binary-gain NDCG of the top k, IDCG over min(|T|, k) positions."""
    top = hits[:, :k].astype(np.float64)  # [n, min(k, depth)]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))  # [k]
    dcg = top @ discounts[: top.shape[1]]
    ideal = np.cumsum(discounts)[np.minimum(truth_sizes, k) - 1]
    return dcg / ideal


def phr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """float64 [n]: 1.0 where the top k hold at least one true item."""
    return hits[:, :k].any(axis=1).astype(np.float64)


def ranking_metrics(relevance: Relevance, ks: Sequence[int] = KS) -> dict[str, float]:
    """recall@k, ndcg@k, phr@k for each k, overall and on the repeat and explore parts."""
    hits, seen = relevance.ranked_hits, relevance.ranked_seen
    parts = {
        "": (hits, relevance.truth_sizes),
        ":repeat": (hits & seen, relevance.repeat_sizes),
        ":explore": (hits & ~seen, relevance.truth_sizes - relevance.repeat_sizes),
    }
    out: dict[str, float] = {}
    for k in ks:
        for suffix, (part_hits, sizes) in parts.items():
            has = sizes > 0  # customers with this part of T
            out[f"recall@{k}{suffix}"] = _mean(recall_at_k(part_hits[has], sizes[has], k))
            out[f"ndcg@{k}{suffix}"] = _mean(ndcg_at_k(part_hits[has], sizes[has], k))
            out[f"phr@{k}{suffix}"] = _mean(phr_at_k(part_hits[has], k))
    return out


def basket_metrics(relevance: Relevance) -> dict[str, float]:
    """The paper's recall / precision / F1 of the predicted basket, in both conventions."""
    hits = relevance.basket_hits.sum(axis=1)  # [n]
    recall = hits / relevance.truth_sizes
    precision = np.divide(
        hits, relevance.basket_sizes, out=np.zeros(len(hits)), where=relevance.basket_sizes > 0
    )
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(len(hits)), where=both > 0)
    paper_recall, hit_ratio = _mean(recall), _mean((hits > 0).astype(np.float64))
    paper_sum = paper_recall + hit_ratio
    return {
        "basket:precision": _mean(precision),
        "basket:recall": _mean(recall),
        "basket:f1": _mean(f1),
        "paper:precision": hit_ratio,
        "paper:recall": paper_recall,
        "paper:f1": 2 * paper_recall * hit_ratio / paper_sum if paper_sum > 0 else 0.0,
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _flat_codes(
    rows: Sequence[Iterable[str]], index: dict[str, int], *, known_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(row, code) int64 pairs of the distinct items of each row. New items get new codes,
    unless ``known_only``: then items not yet in ``index`` are left out."""
    row_ids: list[int] = []
    codes: list[int] = []
    for i, items in enumerate(rows):
        for item in dict.fromkeys(items):
            code = index.get(item) if known_only else index.setdefault(item, len(index))
            if code is not None:
                row_ids.append(i)
                codes.append(code)
    return np.array(row_ids, dtype=np.int64), np.array(codes, dtype=np.int64)


def _padded_codes(rows: Sequence[Sequence[str]], index: dict[str, int], width: int) -> np.ndarray:
    """int64 [n, width]: codes of the first ``width`` distinct items of each row, -1 after."""
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, items in enumerate(rows):
        distinct = list(dict.fromkeys(items))[:width]
        out[i, : len(distinct)] = [index.setdefault(item, len(index)) for item in distinct]
    return out
