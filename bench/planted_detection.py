"""Algorithms 1 and 2 replayed offline over a synthetic world: are the planted cases found?

    .venv/bin/python bench/planted_detection.py --world .run/demo --model .run/demo/train \
        [--threshold 3.5] [--min-history 30] [--novelty-weight 0.85] \
        [--catalog .run/demo/products.csv] [--out RESULT.json]

``--world``: a folder written by ``lens data synth`` (transactions.csv, resupplies.csv,
products.csv, ground_truth.json). ``--model``: a trained LENS run directory or a baseline name (what ``lens
eval`` takes; a baseline is fitted on the whole world). Every session is predicted from the
sessions before it, in event-time order, exactly as the funnel worker would see it with
predictions back before each customer's next basket (the demo's paced replay):

- Algorithm 1 runs the online ``AnomalyDetector`` (same dA, level, minimum history and
  threshold as the worker, one cluster; ``--novelty-weight`` sets the novelty's share of the
  level); a customer counts as found when an alert fires on or after their planted change day.
  Recall = found / planted (also per kind of change); precision = alerted customers with a
  planted change / alerted customers. Also printed at other thresholds, and the dA quantiles.
  ``--catalog`` (the world's products.csv, each product's category, what a retailer's catalog
  holds) adds the need-level signals to the level (``--drop-weight``, ``--new-weight``), with
  each category's typical interval fitted on the world (``lens data need-intervals``; not with
  ``--no-need-intervals``) and, where the catalog has a DEPARTMENT column, the departments
  started (not with ``--no-departments``); the results then also hold the same run without the
  catalog (``anomaly_without_catalog``).
- Algorithm 2 runs ``StockoutMonitor`` with the resupply plan; each prediction goes to the
  customer's most frequent store among their last 10 sessions (the worker keeps fewer sessions,
  but the rule is the same) and brings the customer's sessions up to it (the per-product
  rhythms, ``lens.stockout.rhythm``). A model without days_to_next (most baselines) adds only
  those rhythms. A planted surge counts as found when a stock-out alert names its store and
  product on a day within one of the surge day; found ahead when such an alert came from a
  prediction made before the surge day (foresight, not hindsight). Cell precision = alerted
  cells (store, product, day) that were truly short / alerted cells.

The worker's own live figures come from ``make demo`` (its summary compares the same ground
truth); this script isolates the detectors from the streaming layer and its timing.
"""

import argparse
import collections
import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np

from lens import v1
from lens.anomaly import (
    AnomalyConfig,
    AnomalyDetector,
    fit_need_intervals,
    read_catalog,
    read_departments,
)
from lens.cli.models import resolve_model
from lens.data.loaders import load_funnels
from lens.stockout import StockoutConfig, StockoutMonitor
from lens.stream.event_time import (
    as_utc,
    from_datetime,
    from_timestamp,
    iso_date,
    to_timestamp,
)
from services.pos.resupply import read_resupplies

THRESHOLDS = (2.0, 2.5, 3.0, 3.5, 4.0)


def predict_every_session(model, funnels) -> dict[tuple[str, int], object]:
    """(customer, n) -> the model's NextBasket from the customer's first n sessions."""
    answers = {}
    for n in range(1, max(len(h) for h in funnels.values())):
        histories = {c: h[:n] for c, h in funnels.items() if len(h) > n}
        for customer, answer in model.predict(histories, 20).items():
            answers[(customer, n)] = answer
    return answers


def planted_changes(truth: dict) -> tuple[dict[str, dt.date], dict[str, str]]:
    """customer -> change day, customer -> kind of change, from a world's ground_truth.json."""
    planted = truth["behaviour_changes"]
    return ({c["customer_id"]: dt.date.fromisoformat(c["date"]) for c in planted},
            {c["customer_id"]: c["kind"] for c in planted})


def anomalies(funnels, answers, changes, kinds, config: AnomalyConfig,
              thresholds=THRESHOLDS) -> dict:
    sessions = sorted(
        (h[n].timestamp, c, n) for c, h in funnels.items() for n in range(1, len(h))
        if (c, n) in answers and n >= config.min_sessions
    )
    by_threshold, distances = {}, []
    for threshold in sorted({*thresholds, config.threshold}):
        detector = AnomalyDetector(dataclasses.replace(config, threshold=threshold))
        scored = 0  # sessions with a level (enough history for the novelty)
        recent: dict[str, list[float]] = collections.defaultdict(list)
        alerted = collections.defaultdict(list)
        distances = []
        for when, customer, n in sessions:
            answer = answers[(customer, n)]
            result = detector.observe(
                customer_id=customer, cluster=0, predicted=answer.basket, ranking=answer.items,
                observed=funnels[customer][n].items, recent=recent[customer],
                sessions=[b.items for b in funnels[customer][: n + 1]],
                times=[from_datetime(as_utc(b.timestamp)) for b in funnels[customer][: n + 1]],
                event_time=from_datetime(as_utc(when)), session_index=n + 1,
            )
            recent[customer] = [*recent[customer], result.distance][-config.smoothing :]
            distances.append(result.distance)
            scored += result.level is not None
            if result.alert is not None:
                alerted[customer].append(when.date())
        found = {c for c, days in alerted.items() if c in changes and max(days) >= changes[c]}
        by_threshold[threshold] = {
            "alerted_customers": len(alerted),
            "planted_found": len(found),
            "recall": len(found) / len(changes) if changes else None,
            "precision": len(found) / len(alerted) if alerted else None,
            "found_by_kind": dict(collections.Counter(kinds[c] for c in sorted(found))),
            # alerted customers whose change, if any, had not started when they alerted
            "false_alerts": len(alerted) - len(found),
        }
    quantiles = np.quantile(distances, [0.1, 0.25, 0.5, 0.75, 0.9]).round(3).tolist()
    return {
        "planted": len(changes),
        "planted_by_kind": dict(collections.Counter(kinds.values())),
        "sessions_predicted": len(sessions),
        "sessions_scored": scored,
        "distance_quantiles": dict(zip(("p10", "p25", "p50", "p75", "p90"), quantiles, strict=True)),
        "by_threshold": by_threshold,
    }


def stockouts(funnels, answers, world: Path, truth: dict, config: StockoutConfig) -> dict:
    monitor = StockoutMonitor(config)
    for resupply in read_resupplies(world / "resupplies.csv"):
        monitor.on_resupply(resupply)
    events = sorted(
        (h[n - 1].timestamp, c, n) for c, h in funnels.items() for n in range(1, len(h))
        if (c, n) in answers
    )
    alerts = []
    for when, customer, n in events:
        answer, history = answers[(customer, n)], funnels[customer][:n]
        store = collections.Counter(b.store_id for b in history[-10:]).most_common(1)[0][0]
        quantities = list(answer.quantities) or [0.0] * len(answer.basket)
        scores = dict(zip(answer.items, answer.scores, strict=True))
        days = float("nan") if answer.days_to_next is None else max(0.0, answer.days_to_next)
        alerts += monitor.on_prediction(v1.Prediction(
            prediction_id=f"{customer}:{n}", customer_id=customer, store_id=store,
            as_of=to_timestamp(from_datetime(as_utc(when))), session_index=n, days_to_next=days,
            basket=[v1.PredictedItem(product_id=p, quantity=q, score=scores.get(p, 0.0))
                    for p, q in zip(answer.basket, quantities, strict=True)],
        ), history)
    surges = [s for s in truth["stock_shortfalls"] if s.get("planted")]
    short = {(s["store_id"], s["product_id"], s["date"]) for s in truth["stock_shortfalls"]}
    cells = {(a.store_id, a.product_id, a.day) for a in alerts}

    def near(surge, cell) -> bool:
        days = abs((dt.date.fromisoformat(cell[2]) - dt.date.fromisoformat(surge["date"])).days)
        return cell[:2] == (surge["store_id"], surge["product_id"]) and days <= 1

    ahead = {(a.store_id, a.product_id, a.day) for a in alerts
             if iso_date(from_timestamp(a.as_of)) < a.day}  # predicted before the day
    found = [s for s in surges if any(near(s, c) for c in cells)]
    found_ahead = [s for s in surges if any(near(s, c) for c in ahead)]
    return {
        "planted": len(surges),
        "planted_found": len(found),
        "planted_found_ahead": len(found_ahead),
        "recall": len(found) / len(surges) if surges else None,
        "alerted_cells": len(cells),
        "alerted_cells_truly_short": len(cells & short),
        "cell_precision": len(cells & short) / len(cells) if cells else None,
        "cells": [
            {"store_id": c[0], "product_id": c[1], "day": c[2], "truly_short": c in short,
             "near_surge": any(near(surge, c) for surge in surges)}
            for c in sorted(cells)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="a `lens data synth` folder")
    parser.add_argument("--model", required=True, help="LENS run directory or baseline name")
    parser.add_argument("--threshold", type=float, default=AnomalyConfig().threshold)
    parser.add_argument("--min-history", type=int, default=30)
    parser.add_argument("--novelty-weight", type=float, default=AnomalyConfig().novelty_weight)
    parser.add_argument("--catalog", type=Path, default=None, metavar="FILE",
                        help="product catalog (the world's products.csv): need-level signals")
    parser.add_argument("--no-need-intervals", action="store_true",
                        help="with --catalog: each customer's own intervals only (by default "
                        "the categories' typical intervals are fitted on the world, as `lens "
                        "data need-intervals` does)")
    parser.add_argument("--no-departments", action="store_true",
                        help="with --catalog: without the department term (by default the "
                        "catalog's DEPARTMENT column, where it has one, groups its categories)")
    parser.add_argument("--drop-weight", type=float, default=AnomalyConfig().drop_weight)
    parser.add_argument("--new-weight", type=float, default=AnomalyConfig().new_weight)
    parser.add_argument("--stockout-days", type=int, default=7)
    parser.add_argument("--stockout-min-shortfall", type=float,
                        default=StockoutConfig().min_shortfall)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    funnels = load_funnels(args.world / "transactions.csv").funnels
    truth = json.loads((args.world / "ground_truth.json").read_text())
    model = resolve_model(args.model)
    if getattr(model, "trained", None) is None:
        model.fit(funnels)
    answers = predict_every_session(model, funnels)
    changes, kinds = planted_changes(truth)
    categories = None if args.catalog is None else read_catalog(args.catalog)
    config = AnomalyConfig(
        threshold=args.threshold, min_history=args.min_history, novelty_weight=args.novelty_weight,
        categories=categories, drop_weight=args.drop_weight, new_weight=args.new_weight,
        need_intervals=None if categories is None or args.no_need_intervals
        else fit_need_intervals(funnels.values(), categories),
        departments=None if args.catalog is None or args.no_departments
        else read_departments(args.catalog),
    )
    result = {
        "world": str(args.world), "model": args.model,
        "catalog": None if args.catalog is None else str(args.catalog),
        "need_intervals": config.need_intervals is not None,
        "anomaly": anomalies(funnels, answers, changes, kinds, config),
        "stockout": stockouts(funnels, answers, args.world, truth, StockoutConfig(
            n_days=args.stockout_days, min_shortfall=args.stockout_min_shortfall)),
    }
    if args.catalog is not None:
        result["anomaly_without_catalog"] = anomalies(
            funnels, answers, changes, kinds,
            dataclasses.replace(config, categories=None, need_intervals=None, departments=None)
        )
    s = result["stockout"]
    runs = [("anomaly", "")]
    if args.catalog is not None:
        intervals = "" if config.need_intervals is None else " and its need intervals"
        runs = [("anomaly_without_catalog", " without the catalog"),
                ("anomaly", f" with the catalog {args.catalog}{intervals}")]
    for key, label in runs:
        a = result[key]
        print(f"Algorithm 1{label}: {a['sessions_scored']} sessions scored, dA quantiles "
              f"{a['distance_quantiles']}")
        for threshold, row in a["by_threshold"].items():
            precision = row["precision"]
            print(f"  threshold {threshold}: {row['planted_found']}/{a['planted']} planted changes "
                  f"found, {row['alerted_customers']} customers alerted, precision "
                  f"{precision if precision is None else round(precision, 2)}; "
                  f"found by kind {row['found_by_kind']} of {a['planted_by_kind']}")
    print(f"Algorithm 2: {s['planted_found']}/{s['planted']} planted surges alerted "
          f"({s['planted_found_ahead']} ahead of the day); {s['alerted_cells_truly_short']} of "
          f"{s['alerted_cells']} alerted cells truly short")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
