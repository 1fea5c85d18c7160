"""The alert subscriber: a consumer group on the alert topics that hands every alert to its
sinks, exactly once per alert id as far as a crash allows, and never loses one.

Per record, in order (one record at a time; offsets are committed by hand):

1. decode; bytes that are not the topic's type go to lens.dlq (UNDECODABLE);
2. an alert id already in ``DeliveredIds`` is skipped (counted as deduped);
3. every sink gets the alert; a failing sink is retried with exponential backoff
   (``backoff_s * 2**k``, capped at ``backoff_max_s``) up to ``max_attempts`` attempts, or
   not at all when it refused for good (e.g. HTTP 400); then a v1.DeadLetter with reason
   DELIVERY_FAILED, the sink and the last error in ``detail``, and the original key and value
   goes to lens.dlq, and the broker must acknowledge it;
4. the id is recorded in ``DeliveredIds`` (persisted under the run dir);
5. the offset is committed (synchronously).

A crash before 5 redelivers the record on restart: at-least-once. Step 2 turns the redelivery
of an alert whose sinks already took it into a skip, so sinks see each alert id once except when
the crash falls between 3 and 4.
"""

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lens import v1
from lens.codec import encode
from lens.errors import ConfigError, DataError, RuntimeDependencyError
from lens.topics import ANOMALY_ALERTS, DEAD_LETTERS, STOCKOUT_ALERTS
from services.alerts.alert import ALERT_TOPICS, Alert, alert_from_record
from services.alerts.dedupe import DeliveredIds
from services.alerts.metrics import AlertMetrics
from services.alerts.sinks import DeliveryError, Sink
from services.kafka.connection import Kafka, as_connection

__all__ = ["AlertSubscriber", "SubscriberConfig", "state_path"]

log = logging.getLogger(__name__)

SERVICE_NAME = "alert-subscriber"


@dataclass(frozen=True)
class SubscriberConfig:
    """How the subscriber consumes and retries. Built at the entry point from flags."""

    group_id: str = "lens-alert-subscriber"
    topics: tuple[str, ...] = (ANOMALY_ALERTS.name, STOCKOUT_ALERTS.name)
    max_attempts: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    dedupe_capacity: int = 100_000
    poll_timeout_s: float = 0.5
    from_beginning: bool = True  # where a new group starts: earliest (nothing missed) or latest

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"--max-attempts must be >= 1 (got {self.max_attempts})")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ConfigError("--backoff-s and --backoff-max-s must be >= 0")
        if self.dedupe_capacity < 1:
            raise ConfigError(f"--dedupe-capacity must be >= 1 (got {self.dedupe_capacity})")
        unknown = [t for t in self.topics if t not in ALERT_TOPICS]
        if unknown or not self.topics:
            raise ConfigError(f"alert topics must be among {sorted(ALERT_TOPICS)} (got {unknown})")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)


def state_path(run_dir: Path, group_id: str) -> Path:
    """Where the delivered-ids file of a consumer group lives."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in group_id)
    return Path(run_dir) / "alerts" / safe / "delivered-ids.txt"


class AlertSubscriber:
    """Consumes the alert topics and delivers to ``sinks``; see the module docstring."""

    def __init__(
        self,
        kafka: Kafka,
        sinks: Sequence[Sink],
        *,
        config: SubscriberConfig = SubscriberConfig(),
        delivered: DeliveredIds | None = None,
        metrics: AlertMetrics | None = None,
        consumer: Any = None,
        dead_letter_producer: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not sinks:
            raise ConfigError("give at least one --sink (console, jsonl:PATH or webhook:URL)")
        self.kafka = as_connection(kafka)
        self.sinks = list(sinks)
        self.config = config
        self.delivered = delivered if delivered is not None else DeliveredIds(None, config.dedupe_capacity)
        self.metrics = metrics or AlertMetrics()
        self._sleep = sleep
        if consumer is None:
            from confluent_kafka import Consumer

            consumer = Consumer(
                self.kafka.client_config({
                    "group.id": config.group_id,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest" if config.from_beginning else "latest",
                    "isolation.level": "read_committed",
                    "client.id": SERVICE_NAME,
                })
            )
        if dead_letter_producer is None:
            from confluent_kafka import Producer

            dead_letter_producer = Producer(
                self.kafka.client_config({"enable.idempotence": True, "client.id": SERVICE_NAME})
            )
        self._consumer = consumer
        self._dlq = dead_letter_producer
        self.handled = 0  # records fully processed (committed or attempted to)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, max_records: int | None = None) -> int:
        """Consume until ``stop`` is set (or ``max_records`` were handled); returns records handled."""
        self._consumer.subscribe(list(self.config.topics))
        try:
            while not stop.is_set() and (max_records is None or self.handled < max_records):
                record = self._consumer.poll(self.config.poll_timeout_s)
                if record is None:
                    continue
                if record.error():
                    if record.error().fatal():
                        raise RuntimeDependencyError(f"Kafka consumer failed: {record.error()}")
                    log.warning("consumer: %s", record.error())
                    continue
                self.handle(record)
        finally:
            self.close()
        return self.handled

    def close(self) -> None:
        try:
            self._consumer.close()
        finally:
            self._dlq.flush(10)
            self.delivered.close()
            for sink in self.sinks:
                sink.close()

    # -- one record ---------------------------------------------------------------------------

    def handle(self, record: Any) -> None:
        """Process one record end to end and commit its offset."""
        topic = record.topic()
        kind = ALERT_TOPICS[topic][0]
        self.metrics.received.labels(kind).inc()
        try:
            alert = alert_from_record(topic, record.value())
        except DataError as exc:
            self._dead_letter(record, kind, "decode", v1.DeadLetterReason.DEAD_LETTER_REASON_UNDECODABLE, str(exc))
        else:
            if not alert.alert_id:
                self._dead_letter(
                    record, kind, "decode", v1.DeadLetterReason.DEAD_LETTER_REASON_MISSING_FIELD, "alert_id is empty"
                )
            elif alert.alert_id in self.delivered:
                self.metrics.deduped.labels(kind).inc()
                log.debug("skipping %s alert %s: already delivered", kind, alert.alert_id)
            else:
                for sink in self.sinks:
                    self._deliver(sink, alert, record)
                self.delivered.add(alert.alert_id)
                self._observe_end_to_end(kind, record)
        self._commit(record)
        self.handled += 1

    def _deliver(self, sink: Sink, alert: Alert, record: Any) -> None:
        started = time.perf_counter()
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                sink.deliver(alert)
            except DeliveryError as exc:
                self.metrics.failed.labels(alert.kind, sink.name).inc()
                last_error = exc
                log.warning(
                    "%s alert %s: %s attempt %d/%d failed: %s",
                    alert.kind, alert.alert_id, sink.name, attempt, self.config.max_attempts, exc,
                )
                if not exc.retryable or attempt == self.config.max_attempts:
                    break
                self._sleep(self.config.backoff(attempt))
            else:
                self.metrics.delivered.labels(alert.kind, sink.name).inc()
                self.metrics.delivery_seconds.labels(alert.kind, sink.name).observe(
                    time.perf_counter() - started
                )
                return
        detail = f"sink {sink.name} failed after {attempt} attempt(s): {last_error}"
        self._dead_letter(record, alert.kind, sink.name, v1.DeadLetterReason.DEAD_LETTER_REASON_DELIVERY_FAILED, detail)

    def _dead_letter(self, record: Any, kind: str, sink: str, reason: int, detail: str) -> None:
        letter = v1.DeadLetter(
            source_topic=record.topic(),
            source_partition=record.partition(),
            source_offset=record.offset(),
            reason=reason,
            detail=detail,
            original_key=record.key() or b"",
            original_value=record.value() or b"",
            service=SERVICE_NAME,
        )
        letter.dead_lettered_at.FromDatetime(dt.datetime.now(dt.timezone.utc))
        outcome: list[Any] = []
        self._dlq.produce(
            DEAD_LETTERS.name,
            key=record.key(),
            value=encode(letter),
            on_delivery=lambda error, _message: outcome.append(error),
        )
        self._dlq.flush(30)
        if not outcome or outcome[0] is not None:
            # Not committing: the record comes back after a restart rather than being lost.
            raise RuntimeDependencyError(
                f"could not dead-letter {record.topic()}[{record.partition()}]@{record.offset()} "
                f"to {DEAD_LETTERS.name}: {outcome[0] if outcome else 'no acknowledgement'}"
            )
        self.metrics.dead_lettered.labels(kind, sink, v1.DeadLetterReason.Name(reason).removeprefix("DEAD_LETTER_REASON_").lower()).inc()
        log.error("%s record %s[%d]@%d dead-lettered: %s", kind, record.topic(), record.partition(),
                  record.offset(), detail)

    def _commit(self, record: Any) -> None:
        from confluent_kafka import KafkaException

        try:
            self._consumer.commit(message=record, asynchronous=False)
        except KafkaException as exc:
            # E.g. the partition was revoked meanwhile: the new owner redelivers, dedupe skips it.
            log.warning("offset commit for %s[%d]@%d failed: %s", record.topic(),
                        record.partition(), record.offset(), exc)

    def _observe_end_to_end(self, kind: str, record: Any) -> None:
        timestamp_type, timestamp_ms = record.timestamp()
        if timestamp_type and timestamp_ms > 0:
            seconds = max(time.time() - timestamp_ms / 1000.0, 0.0)
            self.metrics.end_to_end_seconds.labels(kind).observe(seconds)
