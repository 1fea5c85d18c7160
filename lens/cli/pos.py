"""``lens pos replay|simulate`` and ``lens resupply load``: publish point-of-sale events and
resupply plans to Kafka, as a fleet of POS terminals and a planning system would."""

import argparse
import dataclasses
import datetime as dt
import tempfile
import uuid

from lens.cli.history_file import add_history_arguments, load_history
from lens.errors import ConfigError
from lens.settings import LensSettings

SIMULATE_SPEED = "1440"  # one simulated day per minute


def register(subparsers: argparse._SubParsersAction) -> None:
    pos = subparsers.add_parser(
        "pos",
        help="publish point-of-sale events (history replay or a live synthetic stream)",
        description="Publish to pos.transactions as POS terminals do: an idempotent producer, "
        "keyed by customer id, one TransactionLine per basket item (line_no 1..n) followed by "
        "BasketClosed with the line count, baskets in timestamp order.",
    )
    actions = pos.add_subparsers(title="actions", metavar="ACTION", required=True)

    replay = actions.add_parser(
        "replay",
        help="replay a history file in timestamp order",
        description="Replay a purchase history file (the paper's minimal CSV schema or a "
        "Ta-Feng export, plain or zipped) in timestamp order, keeping each basket's own time.",
    )
    add_history_arguments(replay)
    replay.add_argument(
        "--speed", default="max", metavar="X",
        help="replay X times faster than event time (e.g. 3600: an hour per second); "
        "0 or 'max' = as fast as the broker takes them (default max)",
    )
    replay.add_argument("--baskets", type=int, default=None, metavar="N", help="stop after N baskets")
    _common(replay)
    replay.set_defaults(handler=_replay)

    simulate = actions.add_parser(
        "simulate",
        help="publish a live synthetic stream stamped with the current time",
        description="Generate a synthetic world (lens.data.synthetic) and publish its baskets as "
        "a live stream: each event is stamped with the wall-clock time it is sent, baskets "
        f"paced --speed times faster than their simulated time (default {SIMULATE_SPEED}: one "
        "simulated day per minute). Transaction ids get a per-run prefix so runs never collide. "
        "Stops after --duration seconds, --baskets baskets, or the end of the generated period.",
    )
    simulate.add_argument("--customers", type=int, default=200, help="customers (default 200)")
    simulate.add_argument("--stores", type=int, default=3, help="stores (default 3)")
    simulate.add_argument("--days", type=int, default=60, help="simulated days (default 60)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument(
        "--speed", default=SIMULATE_SPEED, metavar="X",
        help=f"X times faster than simulated time; 0/max = no pacing (default {SIMULATE_SPEED})",
    )
    simulate.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    simulate.add_argument("--baskets", type=int, default=None, metavar="N", help="stop after N baskets")
    _common(simulate)
    simulate.set_defaults(handler=_simulate)

    resupply = subparsers.add_parser(
        "resupply",
        help="publish a resupply plan to inventory.resupplies",
        description="Publish a resupply plan CSV (STORE_ID,PROD_ID,DAY,QUANTITY, as `lens data "
        "synth` writes resupplies.csv) to inventory.resupplies, one Resupply per row, keyed by "
        "store. The whole file is checked before anything is sent.",
    )
    resupply_actions = resupply.add_subparsers(title="actions", metavar="ACTION", required=True)
    load = resupply_actions.add_parser("load", help="publish a resupply plan CSV")
    load.add_argument("path", metavar="PATH", help="resupply plan CSV")
    load.set_defaults(handler=_resupply_load)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_count(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be >= 1 (got {value})")


def _replay(args: argparse.Namespace, settings: LensSettings) -> int:
    from services.pos import baskets_in_time_order, parse_speed

    speed = parse_speed(args.speed)
    _check_count("--baskets", args.baskets)
    loaded = load_history(args.data, args.skip_bad)
    baskets = baskets_in_time_order(loaded.funnels)[: args.baskets]
    return _publish(settings, baskets, speed=speed, restamp=False, duration_s=None, args=args)


def _simulate(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.data.loaders import load_funnels
    from lens.data.synthetic import SynthConfig, generate, write
    from services.pos import baskets_in_time_order, parse_speed

    speed = parse_speed(args.speed)
    _check_count("--baskets", args.baskets)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds (got {args.duration})")
    config = SynthConfig(customers=args.customers, days=args.days, seed=args.seed, stores=args.stores)
    with tempfile.TemporaryDirectory(prefix="lens-simulate-") as tmp:
        paths = write(generate(config), tmp)
        funnels = load_funnels(paths["transactions"]).funnels
    run = f"sim{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}"
    baskets = [
        dataclasses.replace(b, basket_id=f"{run}-{b.basket_id}")
        for b in baskets_in_time_order(funnels)[: args.baskets]
    ]
    print(f"simulating {len(baskets)} baskets of {config.customers} customers (run {run})")
    return _publish(settings, baskets, speed=speed, restamp=True, duration_s=args.duration, args=args)


def _publish(settings, baskets, *, speed, restamp, duration_s, args) -> int:
    from services.kafka import KafkaConnection, wait_until_ready
    from services.pos import PosPublisher, replay

    kafka = KafkaConnection.from_settings(settings)
    wait_until_ready(kafka, timeout_s=min(settings.kafka_start_timeout_s, 30.0))
    with PosPublisher(kafka) as publisher:
        stats = replay(
            baskets, publisher, speed=speed, restamp=restamp, duration_s=duration_s,
            progress=not args.no_progress,
        )
    print(stats.summary())
    return 0


def _resupply_load(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.topics import INVENTORY_RESUPPLIES
    from services.kafka import KafkaConnection, wait_until_ready
    from services.pos import PosPublisher, read_resupplies
    from services.pos.resupply import publish_resupplies

    list(read_resupplies(args.path))  # fail on a bad file before touching Kafka
    kafka = KafkaConnection.from_settings(settings)
    wait_until_ready(kafka, timeout_s=min(settings.kafka_start_timeout_s, 30.0))
    with PosPublisher(kafka, topic=INVENTORY_RESUPPLIES.name) as publisher:
        count = publish_resupplies(args.path, publisher)
    print(f"published {count} resupply records from {args.path} to {INVENTORY_RESUPPLIES.name}")
    return 0


if __name__ == "__main__":  # `python -m lens.cli.pos pos replay ...`, also before lens.cli.main lists it
    import sys

    from lens.cli import main as cli

    cli.COMMAND_GROUPS = (sys.modules[__name__],)
    sys.exit(cli.main(sys.argv[1:]))
