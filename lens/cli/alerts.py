"""``lens alerts serve|tail``: deliver anomaly and stock-out alerts, or watch them live."""

import argparse
import signal
import threading

from lens.settings import LensSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    alerts = subparsers.add_parser(
        "alerts",
        help="deliver alerts to sinks (serve) or watch them live (tail)",
        description="Subscribers of lens.alerts.anomaly and lens.alerts.stockout.",
    )
    actions = alerts.add_subparsers(title="actions", metavar="ACTION", required=True)

    serve = actions.add_parser(
        "serve",
        help="consumer-group service delivering alerts to console / JSONL / webhooks",
        description="Consume the alert topics in a consumer group and deliver each alert to "
        "every --sink. Offsets are committed only after every sink took the alert (or it went "
        "to lens.dlq), so nothing is lost; alert ids already delivered are skipped (the ids are "
        "kept, bounded, in <run dir>/alerts/<group>/delivered-ids.txt across restarts). "
        "Webhooks get a JSON body with X-Lens-Timestamp and X-Lens-Signature: sha256=<hex "
        "HMAC-SHA256(secret, '<timestamp>.' + body)>; failures are retried with exponential "
        "backoff, then dead-lettered (DELIVERY_FAILED). Prometheus metrics on "
        "--metrics-host:--metrics-port/metrics.",
    )
    serve.add_argument(
        "--sink", action="append", default=None, metavar="SPEC",
        help="console | jsonl:PATH | webhook:URL; repeat for several (default console)",
    )
    serve.add_argument(
        "--group", dest="alerts_group", default=None,
        help="consumer group id (env LENS_ALERTS_GROUP, default lens-alert-subscriber)",
    )
    serve.add_argument("--max-attempts", type=int, default=5, help="delivery attempts per sink (default 5)")
    serve.add_argument("--backoff-s", type=float, default=0.5, help="first retry delay, doubled each time (default 0.5)")
    serve.add_argument("--backoff-max-s", type=float, default=8.0, help="longest retry delay (default 8)")
    serve.add_argument("--webhook-timeout-s", type=float, default=10.0, help="HTTP timeout per attempt (default 10)")
    serve.add_argument("--dedupe-capacity", type=int, default=100_000, help="alert ids remembered (default 100000)")
    serve.add_argument(
        "--from-latest", action="store_true",
        help="a new group starts at the newest alerts (default: from the beginning, nothing missed)",
    )
    serve.add_argument(
        "--metrics-host", dest="alerts_metrics_host", default=None,
        help="address of the /metrics endpoint (env LENS_ALERTS_METRICS_HOST, default 127.0.0.1; "
        "0.0.0.0 in a container)",
    )
    serve.add_argument(
        "--metrics-port", dest="alerts_metrics_port", type=int, default=None,
        help="port of the /metrics endpoint, 0 = none (env LENS_ALERTS_METRICS_PORT, default 9102)",
    )
    serve.set_defaults(handler=_serve)

    tail = actions.add_parser(
        "tail",
        help="print alerts live, one line each",
        description="Print anomaly and stock-out alerts as they arrive (from the newest, or "
        "--from-beginning), without committing offsets.",
    )
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    tail.add_argument("--type", choices=("anomaly", "stockout"), default=None, help="only this type")
    tail.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N alerts")
    tail.set_defaults(handler=_tail)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _serve(args: argparse.Namespace, settings: LensSettings) -> int:
    from services.alerts import (
        AlertMetrics,
        AlertSubscriber,
        DeliveredIds,
        SubscriberConfig,
        parse_sink,
        serve_metrics,
        state_path,
    )
    from services.kafka import KafkaConnection, wait_until_ready

    group = settings.alerts_group
    host, port = settings.alerts_metrics_host, settings.alerts_metrics_port
    secret = settings.alerts_webhook_secret
    config = SubscriberConfig(
        group_id=group,
        max_attempts=args.max_attempts,
        backoff_s=args.backoff_s,
        backoff_max_s=args.backoff_max_s,
        dedupe_capacity=args.dedupe_capacity,
        from_beginning=not args.from_latest,
    )
    sinks = [
        parse_sink(spec, webhook_secret=secret.get_secret_value().encode() if secret else None,
                   webhook_timeout_s=args.webhook_timeout_s)
        for spec in (args.sink or ["console"])
    ]
    kafka = KafkaConnection.from_settings(settings)
    wait_until_ready(kafka, timeout_s=settings.kafka_start_timeout_s)
    metrics = AlertMetrics()
    server = serve_metrics(metrics.registry, host, port) if port else None
    delivered = DeliveredIds(state_path(settings.run_dir, group), config.dedupe_capacity)
    subscriber = AlertSubscriber(kafka, sinks, config=config, delivered=delivered, metrics=metrics)
    where = f", metrics on http://{host}:{server.server_port}/metrics" if server else ""
    print(f"delivering alerts to {', '.join(args.sink or ['console'])} (group {group}{where})", flush=True)
    try:
        handled = subscriber.run(_stop_on_signals())
    finally:
        if server is not None:
            server.shutdown()
    print(f"stopped after {handled} alert records")
    return 0


def _tail(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.topics import ANOMALY_ALERTS, STOCKOUT_ALERTS
    from services.alerts import tail_alerts
    from services.kafka import KafkaConnection

    topics = {"anomaly": (ANOMALY_ALERTS.name,), "stockout": (STOCKOUT_ALERTS.name,)}.get(
        args.type, (ANOMALY_ALERTS.name, STOCKOUT_ALERTS.name)
    )
    tail_alerts(
        KafkaConnection.from_settings(settings), topics=topics, from_beginning=args.from_beginning,
        limit=args.limit, stop=_stop_on_signals(),
    )
    return 0


if __name__ == "__main__":  # `python -m lens.cli.alerts serve ...`, also before lens.cli.main lists it
    import sys

    from lens.cli import main as cli

    cli.COMMAND_GROUPS = (sys.modules[__name__],)
    sys.exit(cli.main(["alerts", *sys.argv[1:]]))
