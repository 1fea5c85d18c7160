"""``lens stockouts``: Algorithm 2 in batch over a history file and a resupply plan
(``lens.stockout.batch``)."""

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lens.cli.history_file import add_history_arguments, load_history
from lens.cli.models import add_model_argument
from lens.cli.rows import add_out_argument
from lens.errors import ConfigError
from lens.settings import LensSettings

if TYPE_CHECKING:
    from lens import v1

__all__ = ["register", "rows_of", "run"]

COLUMNS = ("store_id", "product_id", "day", "predicted_demand", "resupply_quantity", "shortfall")
SHOWN = 30  # rows printed when there is no --out

DESCRIPTION = """\
Predicts which products will run short before the next resupply (the paper's Algorithm 2,
the same rules as the funnel worker):

  1. every funnel's next basket and days_to_next, from its kept sessions (the last 50);
  2. each prediction adds expected units to demand[store][product][day] over the --days
     days after its last session, store = the customer's most frequent store among the
     kept sessions (ties: the most recent): a product the funnel bought on 3 or more days
     on the days its rhythm says it falls due (lens.stockout.rhythm); the model's other
     basket items, if days_to_next < --days, on the last session's date +
     round(days_to_next), their predicted quantity (1 unit without one) times their score;
  3. R = resupply - demand for every (store, product, day); a cell is short when -R
     exceeds --min-shortfall units (default 0.5: demand is expected units, and a fraction
     of a unit short is not a unit missing). Only days the store's plan covers count: a
     day without any plan row is unknown supply.

Cells of days before the day preceding the history's last session are dropped (the worker
has expired them). --source store is the customer-agnostic variant: each store's daily
sales are one funnel (lens.stockout.StoreFunnel), for retailers without customer ids.
The model needs a time head (LENS): without days_to_next, only the rhythms add demand.
"""

EPILOG = """\
output columns: store_id, product_id, day, predicted_demand, resupply_quantity, shortfall

examples:
  lens stockouts --data data/synth/transactions.csv --model runs/lens \\
                 --resupply data/synth/resupplies.csv
  lens stockouts --data tx.csv --model runs/lens --resupply plan.csv --days 3 --out short.csv
  lens stockouts --data tx.csv --model runs/lens --resupply plan.csv --source store
  lens stockouts --data tx.csv --model runs/lens --resupply plan.csv --as-of 2026-02-01
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stockouts",
        help="out-of-stock cells in batch (Algorithm 2): predicted demand vs a resupply plan",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_history_arguments(parser, data_help="purchase history (.csv or .zip) with STORE_ID")
    add_model_argument(parser)
    parser.add_argument("--resupply", type=Path, required=True, metavar="PLAN",
                        help="resupply plan CSV: STORE_ID,PROD_ID,DAY,QUANTITY")
    parser.add_argument("--days", dest="stockout_days", type=int, default=None, metavar="N",
                        help="horizon: predictions with days_to_next >= N add no demand "
                        "(env LENS_STOCKOUT_DAYS, default 7)")
    parser.add_argument("--min-shortfall", dest="stockout_min_shortfall", type=float,
                        default=None, metavar="UNITS",
                        help="a cell is short when its predicted demand exceeds its resupply by "
                        "more than UNITS (env LENS_STOCKOUT_MIN_SHORTFALL, default 0.5)")
    parser.add_argument("--source", choices=("customer", "store"), default="customer",
                        help="whose funnels make the demand: each customer's baskets "
                        "(default) or each store's daily sales")
    parser.add_argument("--as-of", type=_day, default=None, metavar="DAY",
                        help="use only the baskets before DAY (YYYY-MM-DD): the forecast as it "
                        "stood that morning, e.g. to check it against a plan that is history")
    add_out_argument(parser, SHOWN)
    parser.set_defaults(handler=run)


def _day(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from exc


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens import v1
    from lens.cli.models import resolve_model
    from lens.cli.rows import check_out_path, show_or_write
    from lens.stockout import DemandSource, StockoutConfig
    from lens.stockout.batch import (
        batch_predictions,
        customer_states,
        history_before,
        stockout_report,
        store_states,
    )
    from services.pos import basket_events, baskets_in_time_order, read_resupplies

    check_out_path(args.out)
    config = StockoutConfig(n_days=settings.stockout_days,
                            min_shortfall=settings.stockout_min_shortfall,
                            source=DemandSource(args.source))
    resupplies = list(read_resupplies(args.resupply))  # a bad plan fails before the model runs
    model = resolve_model(args.model)
    loaded = load_history(args.data, args.skip_bad)
    funnels = loaded.funnels if args.as_of is None else history_before(loaded.funnels, args.as_of)
    if config.source is DemandSource.STORE:
        lines = (
            event.line
            for basket in baskets_in_time_order(funnels)
            for event in basket_events(basket)
            if event.WhichOneof("event") == "line"
        )
        states = store_states(lines)
    else:
        states = customer_states(funnels)
    predictions = batch_predictions(states, model, model=v1.ModelRef(name=args.model))
    if all(p.days_to_next != p.days_to_next for p in predictions):  # all NaN
        raise ConfigError(
            f"model {args.model} predicts no days_to_next, so no demand falls on any day: use a "
            "LENS model (a `lens train --out` run directory or a LENS architecture)."
        )
    report = stockout_report(predictions, resupplies, config, states=states)
    rows = rows_of(report.alerts)
    print(
        f"{report.predictions:,} {args.source} funnels predicted"
        + (f" ({report.no_time:,} without days_to_next: their rhythms only)" if report.no_time
           else "")
        + f", {len(rows):,} short cells from {report.since} in "
        f"{len({r['store_id'] for r in rows}):,} stores"
    )
    show_or_write(rows, COLUMNS, args.out, SHOWN)
    return 0


def rows_of(alerts: "list[v1.StockoutAlert]") -> list[dict[str, Any]]:
    return [
        {
            "store_id": a.store_id,
            "product_id": a.product_id,
            "day": a.day,
            "predicted_demand": a.predicted_demand,
            "resupply_quantity": a.resupply_quantity,
            "shortfall": a.shortfall,
        }
        for a in alerts
    ]
