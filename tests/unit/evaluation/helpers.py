"""Test doubles for the evaluation tests: tiny funnels, a tiny model, an independent scorer."""

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence

from lens.baselines.recommender import NextBasket
from lens.data.basket import Basket, Funnels

START = dt.datetime(2024, 1, 1)


def make_funnels(spec: Mapping[str, Sequence[str]]) -> dict[str, list[Basket]]:
    """``{customer: ["a b", "c"]}``: one basket per string (space-separated items), one day apart.
    Basket ids are "<customer>-<position>"."""
    return {
        customer: [
            Basket(
                customer_id=customer,
                basket_id=f"{customer}-{pos}",
                store_id="1",
                timestamp=START + dt.timedelta(days=pos),
                items=tuple(items.split()),
                quantities=(1.0,) * len(items.split()),
                amounts=(2.0,) * len(items.split()),
            )
            for pos, items in enumerate(baskets)
        ]
        for customer, baskets in spec.items()
    }


class TinyTop:
    """The customer's own items by basket count, then the training favourites; basket = top 3.
    Remembers what it was fitted on (``fitted_on``) so tests can check for leaks."""

    name = "tiny-top"

    def __init__(self) -> None:
        self.popular: list[str] = []
        self.fitted_on: set[tuple[str, str]] = set()  # (customer, basket id)

    def fit(self, train: Funnels) -> "TinyTop":
        counts = Counter(item for f in train.values() for b in f for item in b.items)
        self.popular = sorted(counts, key=lambda item: (-counts[item], item))
        self.fitted_on = {(c, b.basket_id) for c, f in train.items() for b in f}
        return self

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        out = {}
        for customer, baskets in histories.items():
            own = Counter(item for b in baskets for item in b.items)
            ranked = sorted(own, key=lambda item: (-own[item], item))
            ranked += [item for item in self.popular if item not in own]
            ranked = ranked[: max(k, 20)]
            out[customer] = NextBasket(
                items=ranked,
                scores=[float(len(ranked) - i) for i in range(len(ranked))],
                basket=ranked[:3],
                quantities=[1.0] * len(ranked[:3]),
                days_to_next=7.0,
            )
        return out


def reference_scores(
    rows: Sequence[tuple[set[str], list[str], list[str], set[str]]], ks: Sequence[int] = (10, 20)
) -> dict[str, float]:
    """Every metric of lens.evaluation.metrics, written out plainly, one customer at a time.

    ``rows``: (true items, ranked list, predicted basket, history items) per customer.
    """

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    out: dict[str, float] = {}
    for k in ks:
        for suffix in ("", ":repeat", ":explore"):
            recalls, ndcgs, phrs = [], [], []
            for truth, ranked, _, history in rows:
                part = {"": truth, ":repeat": truth & history, ":explore": truth - history}[suffix]
                if not part:
                    continue
                top = list(dict.fromkeys(ranked))[:k]
                hits = [item in part for item in top]
                dcg = sum(1 / math.log2(j + 2) for j, hit in enumerate(hits) if hit)
                idcg = sum(1 / math.log2(j + 2) for j in range(min(len(part), k)))
                recalls.append(sum(hits) / len(part))
                ndcgs.append(dcg / idcg)
                phrs.append(float(any(hits)))
            out[f"recall@{k}{suffix}"] = mean(recalls)
            out[f"ndcg@{k}{suffix}"] = mean(ndcgs)
            out[f"phr@{k}{suffix}"] = mean(phrs)
    precisions, recalls, f1s, hit = [], [], [], []
    for truth, _, basket, _ in rows:
        predicted = list(dict.fromkeys(basket))[:10]
        n = len(set(predicted) & truth)
        p = n / len(predicted) if predicted else 0.0
        r = n / len(truth)
        precisions.append(p)
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        hit.append(float(n > 0))
    r, p = mean(recalls), mean(hit)
    out |= {
        "basket:precision": mean(precisions),
        "basket:recall": r,
        "basket:f1": mean(f1s),
        "paper:recall": r,
        "paper:precision": p,
        "paper:f1": 2 * r * p / (r + p) if r + p else 0.0,
    }
    return out
