"""The history sink: a consumer group on ``lens.sessions`` that appends every closed session to
a ``lens.history.SessionStore``.

Per poll, in order: decode the batch (bytes that are not a v1.Session are logged with their
offset and skipped: no store could replay them), append it to the store in one transaction,
then commit the batch's offsets synchronously. A crash between the write and the commit
redelivers the batch on restart; the store's primary key turns it into a no-op, so every
session lands exactly once.
"""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lens import v1
from lens.codec import decode
from lens.errors import DataError, RuntimeDependencyError
from lens.history import AppendResult, SessionStore
from lens.topics import SESSIONS
from services.kafka.connection import Kafka, as_connection

__all__ = ["HistorySink", "SinkConfig", "SinkTotals"]

log = logging.getLogger(__name__)

SERVICE_NAME = "history-sink"


@dataclass(frozen=True)
class SinkConfig:
    """How the sink consumes. Built at the entry point from flags."""

    group_id: str = "lens-history-sink"
    batch_size: int = 500  # sessions per store transaction and offset commit
    poll_timeout_s: float = 0.5


@dataclass
class SinkTotals:
    """Sessions handled since start: stored, duplicates (redeliveries), refused, undecodable."""

    stored: int = 0
    duplicates: int = 0
    refused: int = 0
    undecodable: int = 0

    @property
    def records(self) -> int:
        return self.stored + self.duplicates + self.refused + self.undecodable

    def add(self, result: AppendResult) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.refused += result.refused


class HistorySink:
    """Consumes ``lens.sessions`` into ``store``; see the module docstring."""

    def __init__(
        self, kafka: Kafka, store: SessionStore, *, config: SinkConfig = SinkConfig(),
        consumer: Any = None,
    ) -> None:
        self.store = store
        self.config = config
        self.totals = SinkTotals()
        if consumer is None:
            from confluent_kafka import Consumer

            consumer = Consumer(
                as_connection(kafka).client_config({
                    "group.id": config.group_id,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",  # a new group takes the whole topic
                    "isolation.level": "read_committed",
                    "client.id": SERVICE_NAME,
                })
            )
        self._consumer = consumer

    def run(self, stop: threading.Event, *, max_records: int | None = None) -> SinkTotals:
        """Consume until ``stop`` is set (or ``max_records`` were handled)."""
        self._consumer.subscribe([SESSIONS.name])
        try:
            while not stop.is_set() and (max_records is None or self.totals.records < max_records):
                records = self._consumer.consume(self.config.batch_size, self.config.poll_timeout_s)
                if records:
                    self.handle(records)
        finally:
            self._consumer.close()
        return self.totals

    def handle(self, records: Sequence[Any]) -> None:
        """Store one polled batch, then commit its offsets."""
        sessions, last = [], None
        for record in records:
            if record.error():
                if record.error().fatal():
                    raise RuntimeDependencyError(f"Kafka consumer failed: {record.error()}")
                log.warning("consumer: %s", record.error())
                continue
            last = record
            try:
                sessions.append(decode(v1.Session, record.value()))
            except DataError as exc:
                self.totals.undecodable += 1
                log.error("skipping %s[%d]@%d: %s", record.topic(), record.partition(),
                          record.offset(), exc)
        if last is None:
            return
        result = self.store.append(sessions)
        self.totals.add(result)
        if result.refused:
            log.warning("%d session(s) without customer, index or items were not stored",
                        result.refused)
        self._commit()

    def _commit(self) -> None:
        from confluent_kafka import KafkaException

        try:
            # The consumer's current positions: everything handed out so far is stored.
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            # E.g. a rebalance revoked the partition: the new owner redelivers, the store ignores.
            log.warning("offset commit failed: %s", exc)
