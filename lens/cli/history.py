"""``lens history sink|export|status``: keep the stream's closed sessions, read them back as a CSV."""

import argparse
import signal
import threading
from pathlib import Path

from lens.settings import LensSettings

__all__ = ["add_store_argument", "open_store", "register"]

STORE_HELP = (
    "SQLite history store (env LENS_HISTORY_STORE, default <run dir>/history/sessions.sqlite)"
)


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store``: the history store flag shared by the commands that read it."""
    parser.add_argument("--store", dest="history_store", type=Path, default=None, help=STORE_HELP)


def register(subparsers: argparse._SubParsersAction) -> None:
    history = subparsers.add_parser(
        "history",
        help="keep closed sessions from lens.sessions in a durable store; export it as a CSV",
        description="The history that grows from the stream: `sink` appends every closed "
        "session of lens.sessions to a SQLite store (one table of session lines keyed by "
        "customer, session index and line; a redelivered session is ignored, so each lands "
        "once); `export` writes the store as the minimal-schema CSV every lens command reads.",
    )
    actions = history.add_subparsers(title="actions", metavar="ACTION", required=True)

    sink = actions.add_parser(
        "sink",
        help="consumer-group service: lens.sessions -> the history store",
        description="Consume lens.sessions in a consumer group (a new group starts at the "
        "oldest session) and append each polled batch to the store in one transaction, then "
        "commit its offsets. After a crash the uncommitted batch comes back and is ignored by "
        "the store's key. Runs until SIGTERM/Ctrl-C.",
    )
    add_store_argument(sink)
    sink.add_argument("--group", default="lens-history-sink",
                      help="consumer group id (default lens-history-sink)")
    sink.add_argument("--batch-size", type=int, default=500,
                      help="sessions per store transaction and offset commit (default 500)")
    sink.add_argument("--max-records", type=int, default=None, metavar="N",
                      help="stop after N records (tests, backfills)")
    sink.set_defaults(handler=_sink)

    export = actions.add_parser(
        "export",
        help="write the store as a minimal-schema CSV (TRAN_ID,...,STORE_ID)",
        description="Write the stored sessions as TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,"
        "PROD_AMOUNT,PRODT_QTY,STORE_ID, oldest first: the --data/--history file of lens train, "
        "eval, predict, anomalies and stockouts.",
        epilog="Example: lens history export --since 90 --out .run/history/last90.csv",
    )
    add_store_argument(export)
    export.add_argument("--out", type=Path, required=True, help="CSV file to write")
    export.add_argument("--since", type=float, default=None, metavar="DAYS",
                        help="only the last DAYS days before the newest stored session "
                        "(default: everything)")
    export.set_defaults(handler=_export)

    status = actions.add_parser("status", help="sessions, lines, customers and newest session stored")
    add_store_argument(status)
    status.set_defaults(handler=_status)


def _sink(args: argparse.Namespace, settings: LensSettings) -> int:
    from lens.history import SessionStore
    from services.history import HistorySink, SinkConfig
    from services.kafka import KafkaConnection, wait_until_ready

    kafka = KafkaConnection.from_settings(settings)
    wait_until_ready(kafka, timeout_s=settings.kafka_start_timeout_s)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    path = settings.history_store_path
    with SessionStore(path) as store:
        sink = HistorySink(kafka, store, config=SinkConfig(group_id=args.group, batch_size=args.batch_size))
        print(f"storing lens.sessions into {path} (group {args.group})", flush=True)
        totals = sink.run(stop, max_records=args.max_records)
    print(f"stopped: {totals.stored:,} sessions stored, {totals.duplicates:,} already stored, "
          f"{totals.refused:,} refused, {totals.undecodable:,} undecodable")
    return 0


def open_store(settings: LensSettings):
    """The configured history store; ConfigError when it does not exist yet."""
    from lens.errors import ConfigError
    from lens.history import SessionStore

    path = settings.history_store_path
    if not path.is_file():
        raise ConfigError(f"no history store at {path}: run `lens history sink` first, or point "
                          "--store / LENS_HISTORY_STORE at one.")
    return SessionStore(path)


def _export(args: argparse.Namespace, settings: LensSettings) -> int:
    with open_store(settings) as store:
        lines = store.export_csv(args.out, since_days=args.since)
        window = f"last {args.since:g} days before {store.newest()}" if args.since else "everything"
    print(f"wrote {lines:,} lines ({window}) to {args.out}")
    return 0


def _status(args: argparse.Namespace, settings: LensSettings) -> int:
    with open_store(settings) as store:
        counts, newest = store.counts(), store.newest()
    print(f"{settings.history_store_path}: {counts['sessions']:,} sessions, {counts['lines']:,} "
          f"lines, {counts['customers']:,} customers; newest session {newest or '-'}")
    return 0
