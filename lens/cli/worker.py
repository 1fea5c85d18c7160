"""``lens worker funnel``: run the funnel-state Faust worker (sessions, predictions, alerts).

Stops cleanly on SIGTERM/SIGINT (Faust's worker commits offsets and closes its tables).
"""

import argparse
import gc
import sys
from pathlib import Path

from lens.settings import LensSettings

YOUNG_OBJECTS = 10_000  # the worker's generation-0 threshold (Python's default is 700)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a LENS stream worker (funnel: sessions, predictions, anomaly and stock-out alerts)",
        description="Run a Faust worker. `funnel` consumes pos.transactions and "
        "inventory.resupplies and produces lens.sessions, lens.predictions, lens.alerts.anomaly, "
        "lens.alerts.stockout and lens.dlq; its tables live under <run dir>/funnel; /metrics is "
        "served on 127.0.0.1:<web port>. Start as many workers as there are partitions to share.",
        epilog="Example: lens worker funnel --web-port 6066 --model-server 127.0.0.1:8500",
    )
    parser.add_argument("service", choices=("funnel",), help="which worker to run")
    # Flags whose dest names a LensSettings field override LENS_* variables (settings_from_args).
    parser.add_argument("--web-port", dest="worker_web_port", type=int, default=None,
                        help="port of /metrics and the worker's views "
                        "(env LENS_WORKER_WEB_PORT, default 6066)")
    parser.add_argument("--model-server", dest="model_server", default=None,
                        help="host:port of the model server (env LENS_MODEL_SERVER)")
    parser.add_argument("--canary-label", dest="model_canary_label", default=None,
                        help="version label of the canary model (env LENS_MODEL_CANARY_LABEL, "
                        "default canary)")
    parser.add_argument("--canary-share", dest="model_canary_share", type=float, default=None,
                        help="share of customers (0..1, fixed per customer) predicted by the "
                        "canary label (env LENS_MODEL_CANARY_SHARE, default 0)")
    parser.add_argument("--no-model", action="store_true",
                        help="run without a model server: sessions and alerts only, no predictions")
    parser.add_argument("--model-name", dest="model_name", default=None,
                        help="model name to ask for (env LENS_MODEL_NAME, default lens)")
    parser.add_argument("--predict-retry", dest="predict_retry_s", type=float, default=None,
                        metavar="SECONDS",
                        help="wait before a failed prediction is retried, doubling up to 16x "
                        "(env LENS_PREDICT_RETRY_S, default 5)")
    parser.add_argument("--inactivity-timeout", dest="funnel_inactivity_timeout_s", type=float,
                        default=None, metavar="SECONDS",
                        help="event time without a line after which a basket closes "
                        "(env LENS_FUNNEL_INACTIVITY_TIMEOUT_S, default 3600)")
    parser.add_argument("--sweep-interval", dest="funnel_sweep_interval_s", type=float,
                        default=None, metavar="SECONDS",
                        help="how often idle baskets are swept and failed predictions retried "
                        "(env LENS_FUNNEL_SWEEP_INTERVAL_S, default 5)")
    parser.add_argument("--quiet-after", dest="funnel_quiet_after_s", type=float, default=None,
                        metavar="SECONDS",
                        help="a partition quiet this long advances its event-time watermark by "
                        "processing time (env LENS_FUNNEL_QUIET_AFTER_S, default 10)")
    parser.add_argument("--event-loop", dest="funnel_event_loop", choices=("uvloop", "asyncio"),
                        default=None,
                        help="the worker's event loop: uvloop (less CPU per record) or Python's "
                        "asyncio loop (env LENS_FUNNEL_EVENT_LOOP, default uvloop)")
    parser.add_argument("--anomaly-min-history", dest="anomaly_min_history", type=int,
                        default=None,
                        help="sessions a cluster needs before it can alert "
                        "(env LENS_ANOMALY_MIN_HISTORY, default 30)")
    parser.add_argument("--anomaly-min-sessions", dest="anomaly_min_sessions", type=int,
                        default=None,
                        help="sessions a customer's prediction must have seen before the next "
                        "session is scored (env LENS_ANOMALY_MIN_SESSIONS, default 4)")
    parser.add_argument("--anomaly-threshold", dest="anomaly_threshold", type=float,
                        default=None,
                        help="dB (robust z of dA within the cluster) above which a session "
                        "alerts (env LENS_ANOMALY_THRESHOLD, default 3.5)")
    parser.add_argument("--clusters", dest="cluster_model", type=Path, default=None,
                        metavar="PATH",
                        help="behaviour clusters (a lens.anomaly.ClusterModel file) for "
                        "Algorithm 1 (env LENS_CLUSTER_MODEL); default: one cluster for everyone")
    parser.add_argument("--catalog", dest="anomaly_catalog", type=Path, default=None,
                        metavar="FILE",
                        help="product catalog (PROD_ID,PRODUCT_SUBCLASS) for Algorithm 1's "
                        "need-level signals (env LENS_ANOMALY_CATALOG); default: none")
    parser.add_argument("--need-intervals", dest="anomaly_need_intervals", type=Path,
                        default=None, metavar="FILE",
                        help="with --catalog: each category's typical interval between "
                        "purchases in the population (`lens data need-intervals`; env "
                        "LENS_ANOMALY_NEED_INTERVALS), so that a need bought twice can be late; "
                        "default: each customer's own intervals only")
    parser.add_argument("--product-segments", dest="product_segments", type=Path, default=None,
                        metavar="PATH",
                        help="product segment map of `lens segments products` (its folder or "
                        "product_segment_map.json; env LENS_PRODUCT_SEGMENTS): stock-out alerts "
                        "then carry the product's segment")
    parser.add_argument("--stockout-days", dest="stockout_days", type=int, default=None,
                        help="Algorithm 2 horizon in days (env LENS_STOCKOUT_DAYS, default 7)")
    parser.add_argument("--stockout-min-shortfall", dest="stockout_min_shortfall", type=float,
                        default=None, metavar="UNITS",
                        help="Algorithm 2 alerts a cell when its predicted demand exceeds its "
                        "resupply by more than UNITS (env LENS_STOCKOUT_MIN_SHORTFALL, "
                        "default 0.5)")
    parser.add_argument("--app-id", dest="funnel_app_id", default=None,
                        help="Faust app id: consumer group and internal topic prefix "
                        "(env LENS_FUNNEL_APP_ID, default lens-funnel); workers with the same id "
                        "share the partitions")
    parser.add_argument("--loglevel", default="info", help="worker log level (default info)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    import mode.loop
    from faust.worker import Worker

    from services.funnel.app import FunnelService, ensure_topics
    from services.funnel.config import FunnelServiceConfig
    from services.kafka import wait_until_ready

    if settings.funnel_event_loop == "uvloop":
        # before the first loop exists: Faust's worker, the gRPC client and aiokafka all share it
        mode.loop.use("uvloop")
    config = FunnelServiceConfig.from_settings(settings, no_model=args.no_model)
    wait_until_ready(config.kafka, timeout_s=60)
    service = FunnelService(config)
    ensure_topics(service)
    print(
        f"funnel worker {config.app_id}: Kafka {config.bootstrap_servers}, tables in "
        f"{config.store_dir}, metrics at http://{config.web_bind}:{config.web_port}/metrics, "
        f"model server {config.model_server or 'none'}",
        flush=True,
    )
    # Everything imported and built so far (TensorFlow's protos, Faust, the app) lives as long
    # as the worker: out of the collector's sight, a full collection scans only what the stream
    # made since, instead of ~0.25 s of CPU each (~8 % of the worker's CPU under load). A young
    # generation of 10,000 objects instead of 700 lets a record's objects die before they are
    # scanned: collections went from ~5 % of that CPU to ~1.5 % (BENCHMARKS.md).
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
    worker = Worker(service.app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m lens.cli.worker funnel ...``: the same command (global settings from LENS_*
    variables) for as long as ``lens.cli.main.COMMAND_GROUPS`` does not list this module."""
    from lens.cli import main as cli

    groups = cli.COMMAND_GROUPS
    if not any(getattr(g, "__name__", "") == "lens.cli.worker" for g in groups):
        import lens.cli.worker as this

        cli.COMMAND_GROUPS = (*groups, this)
    try:
        return cli.main(["worker", *(argv if argv is not None else sys.argv[1:])])
    finally:
        cli.COMMAND_GROUPS = groups


if __name__ == "__main__":
    sys.exit(main())
