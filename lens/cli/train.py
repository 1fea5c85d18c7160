"""``lens train``: fit a LENS model on a history file, evaluate it, export it for TF Serving."""

import argparse
from pathlib import Path

from lens.cli.history_file import add_history_arguments, load_history
from lens.settings import LensSettings

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a LENS model (SCE-FBE-NSD) on a purchase history file",
        description="Train the paper's hierarchical encoder-decoder on the training funnels of a "
        "protocol split (the held-out target baskets are never seen), with per-epoch validation, "
        "early stopping, checkpoints (rerun with the same --out to resume) and training curves. "
        "Optionally scores the model on the split's valid/test customers like `lens eval` and "
        "exports a TF Serving SavedModel.",
        epilog="Example: lens train --data ta_feng.csv.zip --config lens1000 --protocol nbr "
        "--epochs 10 --out runs/lens1000 --export serving/models/lens",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add_history_arguments(parser)
    add("--config", default="lens1000",
        help="model preset: lens1000, lens2000 (paper Table 1), lens1000u (unidirectional FBE), "
        "lens1000r, lens2000r (with the NSD repeat path), small (the demo), tiny (tests)")
    add("--protocol", default="paper", choices=("paper", "nbr"),
        help="evaluation protocol whose train funnels are used")
    add("--seed", type=int, default=0, help="split and training seed")
    add("--split", default="test", choices=("valid", "test", "none"),
        help="cases to score after training, as `lens eval` does ('none': skip)")
    add("--epochs", type=int, default=10, help="maximum epochs")
    add("--batch-size", type=int, default=128, help="examples per batch")
    add("--learning-rate", type=float, default=1e-3, help="RMSprop learning rate")
    add("--patience", type=int, default=2, help="early stopping patience (epochs)")
    add("--max-steps", type=int, default=None, help="batches per epoch cap (smoke runs)")
    add("--output-vocab", type=int, default=None,
        help="decoder classes (the most frequent items); preset default if unset")
    add("--max-sessions", type=int, default=None, help="history sessions the FBE sees")
    add("--min-history", type=int, default=None, help="minimum sessions before a target")
    add("--time-mode", choices=("joint", "twin"), default=None,
        help="time head trained with the encoders (joint) or apart from them (twin)")
    add("--time-loss", choices=("mae", "mse"), default=None, help="time-to-next regression loss")
    add("--beam-width", type=int, default=None, help="decoding beam width (1 = greedy)")
    add("--end-threshold", type=float, default=None,
        help="decoding: end the basket only where end-of-basket has at least this probability "
        "(0 = when it is the most likely class); preset default if unset")
    add("--repeat-path", action=argparse.BooleanOptionalAction, default=None,
        help="NSD repeat (copy) path over the customer's own items; preset default if unset")
    add("--item-embeddings", default=None,
        help=".npy [vocabulary size, dim] warm start; row i = vocabulary id i of the train split")
    add("--freeze-embeddings", action="store_true", help="keep warm-start item embeddings fixed")
    add("--out", default=None,
        help="run directory: weights, checkpoints, history, curves (default: "
        "<run dir>/train/<config>, i.e. .run/train/<config>)")
    add("--export", default=None, metavar="BASE",
        help="also export a SavedModel to BASE/<next version>/ (e.g. serving/models/lens)")
    add("--eager", action="store_true",
        help="run training steps eagerly (debugging, tiny data: no tracing cost)")
    parser.set_defaults(handler=run)


def _model_config(args: argparse.Namespace):
    import dataclasses

    from lens.model.config import get_config

    config = get_config(args.config)
    overrides = {
        "output_vocab_size": args.output_vocab,
        "max_sessions": args.max_sessions,
        "min_history_sessions": args.min_history,
        "time_mode": args.time_mode,
        "time_loss": args.time_loss,
        "beam_width": args.beam_width,
        "end_threshold": args.end_threshold,
        "repeat_path": args.repeat_path,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.freeze_embeddings:
        overrides["freeze_item_embeddings"] = True
    return dataclasses.replace(config, **overrides)


def training_funnels(data: Path, protocol: str, seed: int, skip_bad: bool):
    """(split, vocabulary) exactly as ``lens train`` builds them: ``lens embed`` must number the
    items the way the training run will."""
    from lens.data.vocabulary import Vocabulary
    from lens.evaluation.protocols import make_split

    split = make_split(load_history(data, skip_bad).funnels, protocol, seed=seed)
    return split, Vocabulary.build(split.train)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    import dataclasses
    import logging

    import numpy as np

    from lens.errors import ConfigError
    from lens.evaluation.evaluator import evaluate
    from lens.model.config import TrainingConfig
    from lens.model.export import export_saved_model
    from lens.model.recommender import LensRecommender
    from lens.model.training import train_lens

    log = logging.getLogger("lens.train")
    config = _model_config(args)
    training = TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        seed=args.seed,
        max_steps_per_epoch=args.max_steps,
        compiled=not args.eager,
    )
    split, vocabulary = training_funnels(args.data, args.protocol, args.seed, args.skip_bad)
    embeddings = None
    if args.item_embeddings:
        embeddings = np.load(args.item_embeddings)
        if embeddings.shape[0] != len(vocabulary):
            raise ConfigError(
                f"{args.item_embeddings}: {embeddings.shape[0]} rows, but the vocabulary of these "
                f"training funnels has {len(vocabulary)} ids; build the embeddings on the same "
                "split (lens embed with the same --data, --protocol and --seed)."
            )
        config = dataclasses.replace(config, item_embedding_dim=int(embeddings.shape[1]))
    out = Path(args.out) if args.out else Path(settings.run_dir) / "train" / config.name
    trained, report = train_lens(
        split.train, config, training, out, item_embeddings=embeddings, vocabulary=vocabulary
    )
    print(f"trained {config.name}: best epoch {report.best_epoch + 1}, valid loss "
          f"{report.best_valid_loss:.4f}; run directory {out} (curves.png, history.json)")
    if args.split != "none":
        result = evaluate(LensRecommender(trained=trained), split, split_name=args.split)
        (out / f"eval_{args.protocol}_{args.split}.json").write_text(result.to_json())
        print(result.table())
    if args.export:
        path = export_saved_model(trained, args.export)
        print(f"exported SavedModel to {path}")
        log.info("export: %s", path)
    return 0
