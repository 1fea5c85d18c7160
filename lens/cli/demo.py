"""``lens demo``: the end-to-end demonstration run by ``make demo``."""

import argparse

from lens.settings import LensSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the end-to-end demo on embedded defaults",
        description="Builds once, under <run dir>/demo, a small synthetic retail world "
        "(lens data synth) and a tiny LENS model exported for serving (lens train --export); "
        "then starts Kafka (a local broker unless LENS_KAFKA_BOOTSTRAP is set), the model server, "
        "a funnel worker and an alert subscriber (console + <run dir>/demo/live/alerts.jsonl), "
        "loads the resupply plan, replays the transactions at full speed, shows predictions and "
        "alerts as they happen, prints a summary (sessions, predictions, alerts by type, dead "
        "letters, throughput, metrics URLs, alerts vs. the planted ground truth) and stops "
        "everything it started. A second run reuses the world and the model.",
    )
    parser.add_argument("--follow", action="store_true",
                        help="keep the stack running after the summary until Ctrl-C")
    parser.add_argument("--catch-up-timeout", type=float, default=360.0, metavar="SECONDS",
                        help="longest wait for the worker to process the replay (default 360)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from services.demo import DemoConfig, run_demo

    config = DemoConfig(follow=args.follow, catch_up_timeout_s=args.catch_up_timeout)
    summary = run_demo(settings, follow=args.follow, config=config)
    return 0 if summary.get("sessions") and summary.get("predictions") else 1
