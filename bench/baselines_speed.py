"""Fit and score every baseline on Ta-Feng under an evaluation protocol; time each step.

    .venv/bin/python bench/baselines_speed.py [--protocol nbr|paper] [--seed 0] [--split test]
        [--only tifu-knn,xgboost] [--data ../shared/data/ta_feng.csv.zip]

One line per baseline: fit and predict seconds (wall clock and CPU, all threads), Recall / NDCG / PHR at 10 from
``lens.evaluation`` and the paper's Table 2 basket figures (recall, precision = hit ratio, F1).

``ndcg@10`` is LENS's (ideal DCG over min(|T|, 10) positions). ``li-ndcg@10`` divides by the ideal
DCG of the whole target instead, as the TIFU-KNN code and the NBR reality check do: compare that
one with their published Ta-Feng numbers (TIFU-KNN Recall@10 0.1301, NDCG@10 0.1011).
"""

import argparse
import logging
import time

import numpy as np

from lens.baselines import BASELINES
from lens.data.loaders import load_funnels
from lens.evaluation.evaluator import predict_all
from lens.evaluation.metrics import basket_metrics, judge, ranking_metrics
from lens.evaluation.protocols import make_split

K = 10


def li_ndcg(ranked_hits: np.ndarray, truth_sizes: np.ndarray, k: int = K) -> float:
    """Mean NDCG@k with the ideal DCG summed over all |T| positions (Li et al.'s convention)."""
    discounts = 1.0 / np.log2(np.arange(2, max(k, truth_sizes.max()) + 2))
    dcg = ranked_hits[:, :k].astype(np.float64) @ discounts[:k]
    return float(np.mean(dcg / np.cumsum(discounts)[truth_sizes - 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/ta_feng.csv.zip")
    parser.add_argument("--protocol", default="nbr", choices=("nbr", "paper"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--only", default=",".join(BASELINES), help="comma-separated names")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    started = time.perf_counter()
    split = make_split(load_funnels(args.data).funnels, args.protocol, seed=args.seed)
    cases = split.cases(args.split)
    histories = {customer: case.history for customer, case in cases.items()}
    print(
        f"{args.protocol} seed {args.seed}: {len(split.train):,} train funnels, "
        f"{len(cases):,} {args.split} customers (load + split {time.perf_counter() - started:.1f}s)"
    )
    for name in args.only.split(","):
        t0, c0 = time.perf_counter(), time.process_time()
        model = BASELINES[name]().fit(split.train)
        t1, c1 = time.perf_counter(), time.process_time()
        answers = predict_all(model, histories, k=20)
        t2, c2 = time.perf_counter(), time.process_time()
        relevance = judge(
            truth=[case.target.items for case in cases.values()],
            ranked=[answers[c].items for c in cases],
            baskets=[answers[c].basket for c in cases],
            history=[[i for b in case.history for i in b.items] for case in cases.values()],
        )
        m = ranking_metrics(relevance) | basket_metrics(relevance)
        print(
            f"{name:21s} fit {t1 - t0:5.1f}s (cpu {c1 - c0:5.1f}s) "
            f"predict {t2 - t1:5.1f}s (cpu {c2 - c1:5.1f}s) | "
            f"recall@{K} {m[f'recall@{K}']:.4f} ndcg@{K} {m[f'ndcg@{K}']:.4f} "
            f"li-ndcg@{K} {li_ndcg(relevance.ranked_hits, relevance.truth_sizes):.4f} "
            f"phr@{K} {m[f'phr@{K}']:.4f} | basket {np.mean(relevance.basket_sizes):.2f} items: "
            f"paper R {m['paper:recall']:.4f} P {m['paper:precision']:.4f} "
            f"F1 {m['paper:f1']:.4f}, per-customer F1 {m['basket:f1']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
