"""``lens retrain``: warm-start a challenger from the serving champion on recent data, publish
it as the next model version only if it is not worse (runnable on a schedule, e.g. nightly)."""

import argparse
import datetime as dt
from pathlib import Path

from lens.cli.history import add_store_argument
from lens.cli.history_file import DATA_HELP, add_history_arguments, load_history
from lens.settings import LensSettings

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="retrain the served model on recent data; publish it only if it is not worse",
        description="Continuous training, one run: (1) take the last --since days of the "
        "history store (or --data); (2) hold out the last basket of each customer active in the "
        "final --eval-days days; (3) warm-start a challenger from the champion (the newest "
        "version under --base, via its model card, or --champion): known products and customers "
        "keep their learned embeddings, new products get fresh ones; fine-tune it on the rest "
        "of the window; (4) score challenger and champion on the held-out baskets with the "
        "metrics of `lens eval`; (5) export the challenger as the next version under --base "
        "(the model server swaps to it without a restart) only if its --metric is not below the "
        "champion's by more than --margin. A model_card.json (decision, both models' metrics, "
        "data window, parent version) goes into the run directory and beside the published "
        "version. Exit status 0 either way; the last line says which.",
        epilog="Example (nightly): lens retrain --since 90 --eval-days 7 --metric recall@10 "
        "--margin 0.005",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add_store_argument(parser)
    add_history_arguments(parser, required=False,
                          data_help=f"{DATA_HELP} instead of the history store")
    add("--since", type=float, default=90.0, metavar="DAYS",
        help="train on the last DAYS days before the newest basket")
    add("--eval-days", type=float, default=7.0, metavar="DAYS",
        help="hold out the last basket of customers active in the final DAYS days")
    add("--base", type=Path, default=None,
        help="model base path (version directories); default serving/models/<LENS_MODEL_NAME>")
    add("--champion", type=Path, default=None, metavar="RUN_DIR",
        help="champion's `lens train --out` directory; default: the run named by the model "
        "card of the newest version under --base")
    add("--metric", default="recall@10", help="metric the decision rests on (higher is better)")
    add("--margin", type=float, default=0.0,
        help="publish when challenger >= champion - MARGIN on --metric")
    add("--epochs", type=int, default=3, help="maximum fine-tuning epochs")
    add("--batch-size", type=int, default=128, help="examples per batch")
    add("--learning-rate", type=float, default=1e-3, help="RMSprop learning rate")
    add("--patience", type=int, default=2, help="early stopping patience (epochs)")
    add("--max-steps", type=int, default=None, help="batches per epoch cap (smoke runs)")
    add("--seed", type=int, default=0, help="training seed")
    add("--out", type=Path, default=None,
        help="challenger's run directory (rerun with the same --out to resume); default "
        "<run dir>/retrain/<UTC time>")
    add("--eager", action="store_true", help="run training steps eagerly (tiny data, debugging)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    import tempfile

    from lens.data.loaders import load_funnels
    from lens.model.config import TrainingConfig
    from lens.retrain import RetrainConfig, find_champion, retrain

    config = RetrainConfig(
        model_name=settings.model_name,
        since_days=args.since,
        eval_days=args.eval_days,
        metric=args.metric,
        margin=args.margin,
        training=TrainingConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            patience=args.patience, seed=args.seed, max_steps_per_epoch=args.max_steps,
            compiled=not args.eager,
        ),
    )
    base = args.base or Path("serving/models") / settings.model_name
    champion = find_champion(base, args.champion)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or settings.run_dir / "retrain" / stamp
    if args.data:
        source, funnels = str(args.data), load_history(args.data, args.skip_bad).funnels
    else:
        from lens.cli.history import open_store

        with open_store(settings) as store, tempfile.TemporaryDirectory() as tmp:
            # The store is read as the CSV every command reads: one loader, one set of checks.
            store.export_csv(Path(tmp) / "history.csv", since_days=args.since)
            source = f"history store {settings.history_store_path}"
            funnels = load_funnels(Path(tmp) / "history.csv").funnels
    print(f"retraining {settings.model_name}: champion {champion.run_dir} (version "
          f"{champion.version or '-'}), run directory {out}", flush=True)
    outcome = retrain(funnels, champion, base, out, config, source=source,
                      say=lambda line: print(line, flush=True))
    card = outcome.card
    print(f"\n{'metric':<18}{'champion':>10}{'challenger':>12}")
    for name in dict.fromkeys((config.metric, "recall@10", "ndcg@10", "phr@10", "basket:f1")):
        print(f"{name:<18}{_fmt(card.champion.get(name)):>10}{_fmt(card.challenger.get(name)):>12}")
    where = f"published as version {card.version} under {base}" if card.version else "rejected"
    print(f"\n{where}: {card.reason}\nmodel card: {out / 'model_card.json'}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
