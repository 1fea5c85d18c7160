"""``lens report``: one self-contained HTML page of what a trained LENS model says about a
history (product and customer segments, behaviour anomalies, stock-out risk), plus its CSVs."""

import argparse
import logging
from pathlib import Path

from lens.cli.history_file import load_history
from lens.cli.segments import (
    add_customer_options,
    add_model_and_data,
    add_product_options,
    load_run,
    log_progress,
    segments_for,
)
from lens.settings import LensSettings

__all__ = ["register", "run"]

log = logging.getLogger(__name__)

EPILOG = """\
files written to --out:
  report.html                    the page (PNG plots embedded as base64; no script, no network)
  product_segments.csv           one row per product segment (as `lens segments products`)
  product_segment_members.csv    product -> segment, distance to centroid, baskets, subclass
  customer_segments.csv          one row per customer segment (as `lens segments customers`)
  customer_segment_members.csv   customer -> segment, predicted days to next visit
  anomaly_scores.csv             customer -> dA, dB, alert (as `lens anomalies`)
  stockout_risk.csv              with --resupply: short products (as `lens stockouts`)

example:
  lens report --model runs/lens --data data/synth/transactions.csv \\
              --resupply data/synth/resupplies.csv --out reports/synth
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="an HTML insight report: segments, anomalies and stock-out risk of a trained model",
        description="Runs a trained LENS model over a history and writes one self-contained HTML "
        "page: need-based product segments (k-means over item embeddings; Ta-Feng: subclass "
        "purity vs a random-embedding control), behavioural customer segments (the clusters of "
        "Algorithm 1) with their profiles, 2-D projections of both embedding spaces, the "
        "distribution of the anomaly score dB, and, with --resupply, predicted demand vs "
        "resupply for the riskiest products. The model reads every customer two or three "
        "times (segments, anomalies, stock-outs): minutes on Ta-Feng; progress goes to stderr.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_and_data(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--resupply",
        type=Path,
        default=None,
        metavar="PLAN",
        help="resupply plan CSV STORE_ID,PROD_ID,DAY,QUANTITY (lens data synth "
        "writes one); without it the stock-out section says so",
    )
    add_customer_options(parser)
    add_product_options(parser, prefix="product-")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.anomaly import AnomalyConfig
    from lens.report import InsightReport, customer_anomalies, stockout_risk
    from lens.segments import FunnelReader
    from lens.stockout import StockoutConfig
    from services.pos import read_resupplies

    # A bad plan fails before minutes of model work.
    resupplies = list(read_resupplies(args.resupply)) if args.resupply is not None else None
    trained = load_run(args.model)
    funnels = load_history(args.data, args.skip_bad).funnels
    reader = FunnelReader(trained)
    segments = segments_for(args, settings, reader, funnels)
    products, customers = segments.products, segments.customers
    log.info("scoring behaviour anomalies (the model reads each customer's earlier baskets)")
    min_history = settings.anomaly_min_history
    anomalies = customer_anomalies(
        reader,
        funnels,
        customers.model,
        AnomalyConfig(
            threshold=settings.anomaly_threshold,
            min_history=min_history,
            window=max(AnomalyConfig().window, min_history),
        ),
        progress=log_progress,
    )
    risk = None
    if resupplies is not None:
        log.info("predicting demand against the resupply plan %s", args.resupply)
        risk = stockout_risk(
            trained,
            funnels,
            resupplies,
            StockoutConfig(n_days=settings.stockout_days,
                           min_shortfall=settings.stockout_min_shortfall),
            products.segments,
            model_name=str(args.model),
        )
    report = InsightReport(
        products=products.segments,
        product_summary=products.summary,
        product_members=products.members,
        purity=products.purity,
        customers=customers,
        profile=segments.profile,
        anomalies=anomalies,
        risk=risk,
        context=[f"model: {args.model}", f"data: {args.data}"]
        + ([f"resupply plan: {args.resupply}"] if args.resupply is not None else []),
    )
    paths = report.write(args.out)
    print(f"wrote {paths[0]} and {len(paths) - 1} CSV tables in {args.out}")
    return 0
