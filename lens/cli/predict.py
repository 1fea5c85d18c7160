"""``lens predict``: next-basket predictions as JSON lines, one per customer.

Three sources of customers:
  --history PATH --customers FILE   fit on every basket in PATH, predict the customers listed in
                                    FILE (one id per line) from all their baskets in PATH
  --active DAYS [--store PATH]      day-to-day scoring: fit on the history store, predict every
                                    customer with a basket in its last DAYS days
  --data PATH --protocol P          fit on the protocol's train part, predict its --split cases,
                                    exactly as ``lens eval`` does (so the output scores the same)
"""

import argparse
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lens.cli.evaluate import PROTOCOL_NAMES
from lens.cli.history import add_store_argument
from lens.cli.history_file import DATA_HELP, add_skip_bad_argument, load_history
from lens.cli.models import add_model_argument
from lens.errors import ConfigError, DataError
from lens.settings import LensSettings

if TYPE_CHECKING:  # lens.baselines imports xgboost: keep it out of `lens --help`
    from lens.baselines.recommender import NextBasket

__all__ = ["prediction_record", "read_customers", "register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="write next-basket predictions (JSON lines) for a list of customers",
        description="Fits the model and writes one JSON line per customer: customer_id, items "
        "(ranked), scores, basket (<= 10 items) and, where the model predicts them, quantities and "
        "days_to_next. Customers come from --history/--customers, from the history store "
        "(--active DAYS: everyone who shopped in the last DAYS days, for daily CRM scoring) or "
        "from a protocol's evaluation cases (--data/--protocol/--split, the cases `lens eval` "
        "scores).",
    )
    add_model_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON lines")
    parser.add_argument("--k", type=int, default=20, help="ranking length asked for (default 20)")
    add_skip_bad_argument(parser)  # for --history and --data alike
    listed = parser.add_argument_group("customers from a list")
    listed.add_argument("--history", type=Path, help="purchases to fit on and predict from")
    listed.add_argument("--customers", type=Path, help="customer ids to predict, one per line")
    active = parser.add_argument_group("customers active in the history store (daily scoring)")
    active.add_argument(
        "--active", type=float, metavar="DAYS",
        help="every customer with a basket in the last DAYS days before the newest stored one",
    )
    add_store_argument(active)
    protocol = parser.add_argument_group("customers from an evaluation protocol")
    protocol.add_argument("--data", type=Path, metavar="PATH", help=DATA_HELP)
    protocol.add_argument("--protocol", choices=PROTOCOL_NAMES, help="how to split")
    protocol.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    protocol.add_argument(
        "--split", choices=("valid", "test"), default="test", help="cases (default test)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.cli.models import resolve_model
    from lens.evaluation.evaluator import predict_all
    from lens.evaluation.protocols import make_split

    list_args, protocol_args = (args.history, args.customers), (args.data, args.protocol)
    by_active = args.active is not None
    by_list = all(list_args) and not any(protocol_args) and not by_active
    by_protocol = all(protocol_args) and not any(list_args) and not by_active
    if not (by_list or by_protocol or (by_active and not any(list_args + protocol_args))):
        raise ConfigError(
            "give either --history PATH --customers FILE, or --active DAYS [--store PATH], or "
            "--data PATH --protocol P [--split S --seed N]."
        )
    model = resolve_model(args.model)
    if by_active:
        train = _store_funnels(settings)
        histories = {c: tuple(train[c]) for c in _active_customers(settings, args.active)}
    elif by_list:
        funnels = load_history(args.history, args.skip_bad).funnels
        customers = read_customers(args.customers)
        unknown = [c for c in customers if c not in funnels]
        if unknown:
            log.warning(
                "%d of %d customers in %s have no baskets in %s (first: %r); they are predicted "
                "from an empty history. Check that ids keep their leading zeros.",
                len(unknown),
                len(customers),
                args.customers,
                args.history,
                unknown[0],
            )
        train = funnels
        histories = {c: tuple(funnels.get(c, ())) for c in customers}
    else:
        funnels = load_history(args.data, args.skip_bad).funnels
        split = make_split(funnels, args.protocol, seed=args.seed)
        train = split.train
        histories = {c: case.history for c, case in split.cases(args.split).items()}
    model.fit(train)
    predictions = predict_all(model, histories, k=args.k)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        for customer in histories:
            out.write(json.dumps(prediction_record(customer, predictions.get(customer))) + "\n")
    missing = sum(c not in predictions for c in histories)
    print(
        f"wrote {len(histories):,} predictions of {model.name} to {args.out}"
        + (f" ({missing:,} customers got none from the model: empty lines)" if missing else "")
    )
    return 0


def _store_funnels(settings: LensSettings):
    """Every basket of the history store, read as the CSV every command reads."""
    import tempfile

    from lens.cli.history import open_store
    from lens.data.loaders import load_funnels

    with open_store(settings) as store, tempfile.TemporaryDirectory() as tmp:
        store.export_csv(Path(tmp) / "history.csv")
        return load_funnels(Path(tmp) / "history.csv").funnels


def _active_customers(settings: LensSettings, days: float) -> list[str]:
    from lens.cli.history import open_store

    with open_store(settings) as store:
        customers = store.active_customers(days)
    if not customers:
        raise DataError(f"no customer in {settings.history_store_path} has a basket in the last "
                        f"{days:g} days before its newest session.")
    return customers


def read_customers(path: Path) -> list[str]:
    """Customer ids from a text file, one per line (blank lines skipped, repeats kept once)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the customer list ({exc}).") from exc
    customers = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not customers:
        raise DataError(f"{path}: no customer ids; expected one id per line.")
    return customers


def prediction_record(customer: str, prediction: "NextBasket | None") -> dict[str, Any]:
    """The JSON line of one customer's NextBasket (None: the model gave none -> empty lists)."""
    if prediction is None:
        return {"customer_id": customer, "items": [], "scores": [], "basket": []}
    record: dict[str, Any] = {
        "customer_id": customer,
        "items": list(prediction.items),
        "scores": _floats(prediction.scores),
        "basket": list(prediction.basket),
    }
    if len(prediction.quantities):
        record["quantities"] = _floats(prediction.quantities)
    if prediction.days_to_next is not None:
        record["days_to_next"] = float(prediction.days_to_next)
    return record


def _floats(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values]
