"""``lens eval``: fit a model on a protocol's train split, score it on the valid or test cases."""

import argparse
import json
from pathlib import Path

from lens.cli.history_file import add_history_arguments, load_history
from lens.cli.models import add_model_argument
from lens.settings import LensSettings

__all__ = ["PROTOCOL_NAMES", "register", "run"]

# The names of lens.evaluation.protocols.PROTOCOLS, spelled out so `lens --help` need not import
# numpy (a test keeps the two in step).
PROTOCOL_NAMES = ("paper", "nbr")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a next-basket model on a data set under an evaluation protocol",
        description="Loads purchases (the paper's minimal CSV schema or Ta-Feng, plain or zipped), "
        "splits them by protocol (paper: last basket of a random 30% of customers; nbr: the "
        "Next Basket Recommendation Reality Check setup), fits the model on the train part, "
        "predicts the valid or test customers and prints Recall/NDCG/PHR@10,20 (overall, repeat "
        "and explore items) and the paper's basket recall/precision/F1.",
    )
    add_history_arguments(parser)
    parser.add_argument("--protocol", choices=PROTOCOL_NAMES, required=True, help="how to split")
    add_model_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    parser.add_argument(
        "--split", choices=("valid", "test"), default="test", help="cases to score (default test)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.cli.models import resolve_model
    from lens.evaluation.evaluator import evaluate
    from lens.evaluation.protocols import make_split

    model = resolve_model(args.model)  # before loading: a typo should not cost a data load
    loaded = load_history(args.data, args.skip_bad)
    split = make_split(loaded.funnels, args.protocol, seed=args.seed)
    result = evaluate(model, split, split_name=args.split)
    print(result.table())
    if args.out is not None:
        report = {**result.to_dict(), "data": loaded.source, "skipped_rows": dict(loaded.skipped)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
