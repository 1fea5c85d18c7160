"""``lens demo``: the end-to-end demonstration run by ``make demo``."""

import argparse

from lens.settings import LensSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the end-to-end demo on embedded defaults",
        description="Starts a local Kafka broker (unless LENS_KAFKA_BOOTSTRAP is set), creates "
        "the LENS topics, sends a point-of-sale TransactionLine through Kafka as protobuf, "
        "prints what came back, and stops everything it started.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from services.demo import run_demo

    run_demo(settings)
    return 0
