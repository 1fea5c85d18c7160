"""``lens embed``: pre-train item embeddings on baskets for a LENS warm start."""

import argparse

from lens.cli.history_file import add_history_arguments
from lens.settings import LensSettings

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="pre-train item embeddings on baskets (skip-gram) for `lens train --item-embeddings`",
        description="Learn item embeddings from the products bought together in the training "
        "funnels of a protocol split (skip-gram with negative sampling over basket pairs), "
        "numbered exactly as `lens train` numbers items on the same --data, --protocol and "
        "--seed. Writes a .npy [vocabulary size, dim] for `lens train --item-embeddings` "
        "(add --freeze-embeddings there to keep them fixed).",
        epilog="Example: lens embed --data ta_feng.csv.zip --protocol nbr --dim 64 --out "
        "runs/items64.npy && lens train --data ta_feng.csv.zip --protocol nbr --config lens1000 "
        "--item-embeddings runs/items64.npy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add_history_arguments(parser)
    add("--protocol", default="paper", choices=("paper", "nbr"),
        help="evaluation protocol whose train funnels are used (as in lens train)")
    add("--seed", type=int, default=0, help="split seed (as in lens train) and training seed")
    add("--dim", type=int, default=64,
        help="embedding size: the item_embedding_dim of the config you will train")
    add("--epochs", type=int, default=5, help="passes over the basket pairs")
    add("--negatives", type=int, default=5, help="noise products per pair")
    add("--out", required=True, help="the .npy file to write")
    add("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from pathlib import Path

    import numpy as np

    from lens.cli.train import training_funnels
    from lens.errors import ConfigError
    from lens.model.skipgram import SkipGramConfig, train_item_embeddings

    if args.dim < 1 or args.epochs < 1 or args.negatives < 1:
        raise ConfigError("--dim, --epochs and --negatives must be >= 1")
    split, vocabulary = training_funnels(args.data, args.protocol, args.seed, args.skip_bad)
    config = SkipGramConfig(dim=args.dim, epochs=args.epochs, negatives=args.negatives,
                            seed=args.seed)
    embeddings = train_item_embeddings(split.train, vocabulary, config,
                                       progress=not args.no_progress)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, embeddings)
    print(f"wrote {out}: {embeddings.shape[0]} items x {embeddings.shape[1]} dims "
          f"({len(split.train):,} training funnels, {args.protocol} protocol)")
    return 0
