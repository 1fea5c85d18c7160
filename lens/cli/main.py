"""``lens``: the single command-line entry point."""

import argparse
import logging
import sys

from lens.cli import (
    alerts,
    anomalies,
    backfill,
    data,
    demo,
    embed,
    evaluate,
    history,
    pos,
    predict,
    report,
    retrain,
    segments,
    serve,
    stack,
    stockouts,
    train,
    worker,
)
from lens.errors import LensError
from lens.settings import LensSettings, load_settings

COMMAND_GROUPS = (
    stack, demo, data, embed, train, evaluate, predict, anomalies, stockouts, segments, report,
    serve, worker, pos, backfill, alerts, history, retrain,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lens",
        description="LENS: next-basket and time-to-next-purchase predictions, behaviour-anomaly "
        "and out-of-stock alerts on a live point-of-sale stream.",
        epilog="Every setting also reads a LENS_* environment variable (e.g. LENS_KAFKA_BOOTSTRAP); "
        "flags win over the environment.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument(
        "--run-dir", default=None, help="runtime data and logs (env LENS_RUN_DIR, default .run)"
    )
    parser.add_argument(
        "--kafka-bootstrap",
        default=None,
        help="use this Kafka cluster instead of the local broker (env LENS_KAFKA_BOOTSTRAP)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def settings_from_args(args: argparse.Namespace) -> LensSettings:
    """Flags that name a settings field (dest == field name) override the environment."""
    overrides = {
        name: getattr(args, name) for name in LensSettings.model_fields if hasattr(args, name)
    }
    return load_settings(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args, settings_from_args(args))
    except LensError as exc:
        print(f"lens: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
