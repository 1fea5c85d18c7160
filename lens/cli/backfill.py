"""``lens backfill``: load customers' history into the funnel state of a new deployment."""

import argparse
from typing import Any

from lens.cli.history_file import add_history_arguments, load_history
from lens.settings import LensSettings

__all__ = ["MarkedProducer", "register", "run"]

DESCRIPTION = """\
Publishes a purchase history to pos.transactions the way `lens pos replay` does (one
TransactionLine per item, then BasketClosed; keyed by customer; baskets in time order, as
fast as the broker takes them), with the record header `lens-backfill: 1` on every record.
The funnel workers sessionize them like live sales, so each customer's table entry holds its
recent sessions and running stats, but every session they close is marked backfilled: no
anomaly alert, no prediction.

Run it once, on a new deployment, before the live POS stream starts: the history must end
before the live data begins (a customer's backfilled line older than its last live session
is late and goes to lens.dlq). The workers may be running or start later; their consumer
group reads the records from the beginning of the topic either way.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="load customers' purchase history into the funnel state (no alerts)",
        description=DESCRIPTION,
        epilog="example:\n  lens backfill --data history/transactions.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_history_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


class MarkedProducer:
    """A confluent-kafka producer that adds the backfill header to every record it sends."""

    def __init__(self, producer: Any) -> None:
        from services.funnel.backfill import BACKFILL_HEADERS

        self._producer = producer
        self._headers = BACKFILL_HEADERS

    def produce(self, topic: str, **kwargs: Any) -> None:
        self._producer.produce(topic, headers=self._headers, **kwargs)

    def poll(self, timeout: float) -> int:
        return self._producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self._producer.flush(timeout)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from services.kafka import KafkaConnection, wait_until_ready
    from services.pos import PosPublisher, baskets_in_time_order, replay
    from services.pos.publisher import pos_producer

    loaded = load_history(args.data, args.skip_bad)
    baskets = baskets_in_time_order(loaded.funnels)
    kafka = KafkaConnection.from_settings(settings)
    wait_until_ready(kafka, timeout_s=min(settings.kafka_start_timeout_s, 30.0))
    producer = pos_producer(kafka, client_id="lens-backfill")
    with PosPublisher(kafka, producer=MarkedProducer(producer)) as publisher:
        stats = replay(baskets, publisher, progress=not args.no_progress)
    print(f"backfill: {stats.summary()} of {len(loaded.funnels):,} customers")
    return 0
