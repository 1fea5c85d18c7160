"""Fit a Recommender on a Split's train funnels, predict its evaluation cases, score them.

``lens eval`` is ``evaluate``; ``lens predict --data ... --protocol ...`` uses the same
``predict_all`` on the same cases, so its output scores to the same numbers.
"""

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from lens.baselines.recommender import NextBasket, Recommender
from lens.data.basket import Funnels
from lens.evaluation.metrics import BASKET_CAP, KS, basket_metrics, judge, ranking_metrics
from lens.evaluation.protocols import EvaluationCase, Split

__all__ = ["EvaluationResult", "evaluate", "predict_all", "score"]

log = logging.getLogger(__name__)

# Customers per predict() call: small enough for a lively progress bar, large enough that a
# vectorized model still works in bulk.
PREDICT_CHUNK = 1024


@dataclass(frozen=True)
class EvaluationResult:
    """What ``lens eval`` reports: metric name -> value (see lens.evaluation.metrics for the names;
    NaN where no customer has that part) and counts ("customers", "customers:repeat",
    "customers:explore", "missing_predictions", "oversized_baskets")."""

    model: str
    protocol: str
    split: str
    seed: int
    ks: tuple[int, ...]
    metrics: Mapping[str, float]
    counts: Mapping[str, int]
    fit_seconds: float
    predict_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        out = asdict(self)
        out["ks"] = list(self.ks)
        out["metrics"] = {k: None if math.isnan(v) else v for k, v in self.metrics.items()}
        out["counts"] = dict(self.counts)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        """A plain-text table: ranking metrics by part, then the predicted-basket figures."""
        m, c = self.metrics, self.counts
        lines = [
            f"{self.model} on {self.protocol}/{self.split} (seed {self.seed}): "
            f"{c['customers']:,} customers ({c['customers:repeat']:,} with repeat items, "
            f"{c['customers:explore']:,} with explore items in the target)",
            "",
            f"{'ranking':<12}{'all':>9}{'repeat':>9}{'explore':>9}",
        ]
        for k in self.ks:
            for metric in ("recall", "ndcg", "phr"):
                name = f"{metric}@{k}"
                values = (m[name], m[f"{name}:repeat"], m[f"{name}:explore"])
                lines.append(f"{name:<12}" + "".join(f"{_fmt(v):>9}" for v in values))
        lines += [
            "",
            f"{f'predicted basket (<= {BASKET_CAP})':<32}{'recall':>9}{'precision':>10}{'f1':>9}",
            f"{'per customer':<32}{_fmt(m['basket:recall']):>9}"
            f"{_fmt(m['basket:precision']):>10}{_fmt(m['basket:f1']):>9}",
            f"{'paper table (precision = PHR)':<32}{_fmt(m['paper:recall']):>9}"
            f"{_fmt(m['paper:precision']):>10}{_fmt(m['paper:f1']):>9}",
            "",
            f"fit {self.fit_seconds:.1f} s, predict {self.predict_seconds:.1f} s; "
            f"{c['missing_predictions']:,} customers without a prediction, "
            f"{c['oversized_baskets']:,} baskets cut to {BASKET_CAP} items",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def predict_all(
    recommender: Recommender,
    histories: Funnels,
    *,
    k: int = max(KS),
    chunk_size: int = PREDICT_CHUNK,
) -> dict[str, NextBasket]:
    """``recommender.predict`` for every customer of ``histories``, in chunks, with a progress
    bar. Returns customer id -> NextBasket (customers the model skipped are absent)."""
    customers = list(histories)
    predictions: dict[str, NextBasket] = {}
    with tqdm(total=len(customers), desc=f"predict {recommender.name}", unit="customer") as bar:
        for start in range(0, len(customers), chunk_size):
            chunk = {c: histories[c] for c in customers[start : start + chunk_size]}
            predictions.update(recommender.predict(chunk, k))
            bar.update(len(chunk))
    return predictions


def score(
    predictions: Mapping[str, NextBasket],
    cases: Mapping[str, EvaluationCase],
    *,
    ks: Sequence[int] = KS,
) -> tuple[dict[str, float], dict[str, int]]:
    """Metrics and counts of ``predictions`` on ``cases``. A case without a prediction scores as
    an empty prediction (and is counted in "missing_predictions")."""
    empty = NextBasket(items=(), scores=(), basket=())
    found = [predictions.get(customer, empty) for customer in cases]
    relevance = judge(
        truth=[case.target.items for case in cases.values()],
        ranked=[p.items for p in found],
        baskets=[p.basket for p in found],
        history=[[item for b in case.history for item in b.items] for case in cases.values()],
        depth=max(ks),
    )
    metrics = ranking_metrics(relevance, ks) | basket_metrics(relevance)
    counts = {
        "customers": len(cases),
        "customers:repeat": int((relevance.repeat_sizes > 0).sum()),
        "customers:explore": int((relevance.repeat_sizes < relevance.truth_sizes).sum()),
        "missing_predictions": sum(customer not in predictions for customer in cases),
        "oversized_baskets": sum(len(set(p.basket)) > BASKET_CAP for p in found),
    }
    return metrics, counts


def evaluate(
    recommender: Recommender, split: Split, *, split_name: str = "test", ks: Sequence[int] = KS
) -> EvaluationResult:
    """Fit ``recommender`` on ``split.train``, predict the ``split_name`` cases, score them."""
    cases = split.cases(split_name)
    started = time.perf_counter()
    recommender.fit(split.train)
    fitted = time.perf_counter()
    log.info("fitted %s in %.1f s", recommender.name, fitted - started)
    histories = {customer: case.history for customer, case in cases.items()}
    predictions = predict_all(recommender, histories, k=max(ks))
    predicted = time.perf_counter()
    metrics, counts = score(predictions, cases, ks=ks)
    if counts["missing_predictions"]:
        log.warning(
            "%s gave no prediction for %d of %d customers; they score 0",
            recommender.name,
            counts["missing_predictions"],
            len(cases),
        )
    return EvaluationResult(
        model=recommender.name,
        protocol=split.protocol,
        split=split_name,
        seed=split.seed,
        ks=tuple(ks),
        metrics=metrics,
        counts=counts,
        fit_seconds=fitted - started,
        predict_seconds=predicted - fitted,
    )


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"
