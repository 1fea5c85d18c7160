"""``lens data``: datasets for tests, the demo and benchmarks, and what is fitted on a history.

``lens data synth`` writes a synthetic retail world with known answers (see
:mod:`lens.data.synthetic`); ``lens data need-intervals`` fits each catalog category's typical
interval between purchases (``lens.anomaly.fit_need_intervals``).
"""

import argparse
import datetime as dt
import time
from pathlib import Path

from lens.cli.history_file import add_history_arguments, load_history
from lens.errors import ConfigError
from lens.settings import LensSettings

__all__ = ["register"]

PROGRESS_FROM_CUSTOMERS = 20_000  # show progress bars for runs at least this big
# lens.anomaly.FIT_MIN_CUSTOMERS, spelled out so --help imports no numpy (a test compares them)
_DEFAULT_MIN_CUSTOMERS = 5

SYNTH_DESCRIPTION = """\
Simulate a chain of stores and its customers: need categories with brands and
prices; customer segments with recurring needs of personal periodicity, brand
loyalty and exploration; a preferred store; store-exclusive and seasonal items;
busier weekends. Plant behaviour changes (for anomaly alerts) and promotions the
resupply plan misses (for out-of-stock alerts), and record them in
ground_truth.json; write the product catalog (each product's category and its
department) to products.csv.
"""

SYNTH_EPILOG = """\
files written into --out (created if missing; these four files are replaced):
  transactions.csv   TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID
                     one row per (basket, product), sorted by TIMESTAMP (2026-01-05T10:31:00);
                     PROD_AMOUNT = money value of the line, PRODT_QTY = units (integer >= 1)
  resupplies.csv     STORE_ID,PROD_ID,DAY,QUANTITY
                     the a-priori resupply plan for the last --resupply-days days: forecast
                     from history plus a margin, except where a promotion was planted
  products.csv       PROD_ID,PRODUCT_SUBCLASS,DEPARTMENT
                     the product catalog: each product's need category (milk, diapers, ...)
                     and its department (dairy, baby, ...), as a retailer's catalog has them;
                     no customer or planted fact. Algorithm 1 reads it as its catalog
                     (lens anomalies --catalog, LENS_ANOMALY_CATALOG)
  ground_truth.json  parameters and seed, products, each customer's segment and recurring needs,
                     planted behaviour changes (customer, date, what changed), planted demand
                     surges (store, product, day, expected demand vs planned resupply) and every
                     cell where demand exceeded the plan

The same flags give the same files, byte for byte.

examples:
  lens data synth --out data/synth                       200 customers, 60 days (about a second)
  lens data synth --customers 100000 --days 120 --seed 7 --out data/bench
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser(
        "data",
        help="generate datasets (synthetic retail data with ground truth); fit the catalog's "
        "need intervals",
        description="Datasets for tests, the demo and benchmarks, and what is fitted on a "
        "history.",
    )
    commands = data.add_subparsers(title="data commands", metavar="DATA_COMMAND", required=True)
    synth = commands.add_parser(
        "synth",
        help="write synthetic transactions, a resupply plan, a product catalog and the ground "
        "truth",
        description=SYNTH_DESCRIPTION,
        epilog=SYNTH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument(
        "--customers", type=int, default=200, metavar="N",
        help="number of customers, at least 20 and 10 per store (default 200)",
    )
    synth.add_argument(
        "--days", type=int, default=60, metavar="D",
        help="length of the period in days; at least --resupply-days + 14 (default 60)",
    )
    synth.add_argument(
        "--seed", type=int, default=0, metavar="S",
        help="random seed, >= 0; the same seed gives the same files (default 0)",
    )
    synth.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write the four files into"
    )
    synth.add_argument(
        "--stores", type=int, default=3, metavar="K",
        help="number of stores S1..SK, 1 to 99 (default 3)",
    )
    synth.add_argument(
        "--start", default="2026-01-05", metavar="YYYY-MM-DD",
        help="first day of the period (default 2026-01-05, a Monday)",
    )
    synth.add_argument(
        "--change-fraction", type=float, default=0.05, metavar="F",
        help="share of customers whose behaviour changes on a known day, 0 to 0.5 (default 0.05)",
    )
    synth.add_argument(
        "--surges", type=int, default=3, metavar="N",
        help="planted promotions whose demand the resupply plan misses, 0 to 100 (default 3)",
    )
    synth.add_argument(
        "--resupply-days", type=int, default=14, metavar="D",
        help="days at the end of the period the resupply plan covers (default 14)",
    )
    synth.add_argument(
        "--resupply-margin", type=float, default=0.2, metavar="M",
        help="plan = forecast * (1 + M) + safety stock (default 0.2)",
    )
    synth.set_defaults(handler=_synth)

    need = commands.add_parser(
        "need-intervals",
        help="fit each catalog category's typical interval between purchases (Algorithm 1)",
        description=NEED_INTERVALS_DESCRIPTION,
        epilog=NEED_INTERVALS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_history_arguments(need)
    need.add_argument("--catalog", type=Path, required=True, metavar="FILE",
                      help="product catalog, a CSV with PROD_ID (or PRODUCT_ID) and "
                      "PRODUCT_SUBCLASS (`lens data synth` writes products.csv)")
    need.add_argument("--out", type=Path, required=True, metavar="FILE",
                      help="the JSON file to write")
    need.add_argument("--min-customers", type=int, default=_DEFAULT_MIN_CUSTOMERS, metavar="N",
                      help="customers a category needs (bought in 3+ sessions) for its "
                      f"interval (default {_DEFAULT_MIN_CUSTOMERS})")
    need.set_defaults(handler=_need_intervals)


NEED_INTERVALS_DESCRIPTION = """\
Fit each catalog category's typical interval between purchases on a purchase
history: over the customers who bought the category in 3 or more sessions, the
median of their mean interval in days (categories so bought by fewer than
--min-customers customers are left out). Algorithm 1's overdue needs read it
(lens worker funnel --need-intervals, LENS_ANOMALY_NEED_INTERVALS): a need a
customer bought only twice, or at a pace of their own, is then late when
everyone else's rhythm for it, at this customer's pace, says so.
"""

NEED_INTERVALS_EPILOG = """\
output: a JSON file {"format": "lens.anomaly.need_intervals", "version": 1,
"customers": N, "days": {category: typical interval in days}}

examples:
  lens data need-intervals --data .run/demo/transactions.csv \\
      --catalog .run/demo/products.csv --out .run/demo/need_intervals.json
  lens data need-intervals --data tafeng.zip --catalog tafeng.zip --out need_intervals.json
"""


def _need_intervals(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.anomaly import (
        FIT_MIN_COUNT,
        fit_need_intervals,
        read_catalog,
        write_need_intervals,
    )

    if args.min_customers < 1:
        raise ConfigError(f"--min-customers must be >= 1 (got {args.min_customers})")
    categories = read_catalog(args.catalog)  # before the history: a typo costs no load
    funnels = load_history(args.data, args.skip_bad).funnels
    intervals = fit_need_intervals(funnels.values(), categories,
                                   min_customers=args.min_customers)
    if not intervals:
        raise ConfigError(
            f"no category of {args.catalog} was bought in {FIT_MIN_COUNT}+ sessions by "
            f"{args.min_customers} customers of {args.data}: is it the catalog of this history?")
    path = write_need_intervals(intervals, args.out, customers=len(funnels))
    shortest = min(intervals, key=intervals.get)
    longest = max(intervals, key=intervals.get)
    print(f"wrote the typical intervals of {len(intervals):,} categories (of "
          f"{len(set(categories.values())):,} in the catalog), fitted on {len(funnels):,} "
          f"customers, to {path}: from {intervals[shortest]:.1f} days ({shortest}) to "
          f"{intervals[longest]:.1f} days ({longest})")
    return 0


def _synth(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.data.synthetic import SynthConfig, generate, write

    try:
        start = dt.date.fromisoformat(args.start)
    except ValueError as exc:
        raise ConfigError(
            f"--start must be a date like 2026-01-05 (got {args.start!r})"
        ) from exc
    config = SynthConfig(
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        stores=args.stores,
        start=start,
        change_fraction=args.change_fraction,
        surges=args.surges,
        resupply_days=args.resupply_days,
        resupply_margin=args.resupply_margin,
    )
    progress = config.customers >= PROGRESS_FROM_CUSTOMERS
    began = time.monotonic()
    dataset = generate(config, progress=progress)
    paths = write(dataset, args.out, progress=progress)
    tx = dataset.transactions
    print(
        f"wrote {len(tx)} transaction lines ({tx['TRAN_ID'].nunique()} baskets, "
        f"{config.customers} customers, {config.stores} stores, {config.start} .. "
        f"{config.end - dt.timedelta(days=1)}) to {paths['transactions']}"
    )
    print(
        f"wrote {len(dataset.resupplies)} resupply rows (from {config.resupply_start}) "
        f"to {paths['resupplies']}"
    )
    print(f"wrote {len(dataset.products)} products with their category and department to "
          f"{paths['products']}")
    print(
        f"wrote {len(dataset.changes)} behaviour changes, {len(dataset.surges)} demand surges "
        f"and {len(dataset.shortfalls)} short cells to {paths['ground_truth']} "
        f"in {time.monotonic() - began:.1f}s"
    )
    return 0
