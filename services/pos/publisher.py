"""Replays baskets onto pos.transactions the way a fleet of POS terminals sends them.

``replay(baskets, publisher, speed=...)`` paces baskets by event time (``speed`` times faster than
it passed; None = as fast as the broker takes them); ``PosPublisher`` is the idempotent producer,
keyed by customer id, that raises when the broker did not acknowledge every record.
"""

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm import tqdm

from lens import v1
from lens.codec import encode
from lens.data.basket import Basket
from lens.errors import ConfigError, RuntimeDependencyError
from lens.topics import POS_TRANSACTIONS
from services.kafka.connection import Kafka, as_connection
from services.pos.events import basket_events, event_key

__all__ = ["EventSink", "PosPublisher", "ReplayStats", "parse_speed", "pos_producer", "replay"]

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def send(self, event: v1.PosEvent) -> None: ...


@dataclass(frozen=True)
class ReplayStats:
    """What a replay sent and how long it took (wall clock)."""

    lines: int
    baskets: int
    seconds: float

    def summary(self) -> str:
        seconds = max(self.seconds, 1e-9)
        return (
            f"published {self.lines:,} lines and {self.baskets:,} baskets in {self.seconds:.1f} s "
            f"({self.lines / seconds:,.0f} lines/s, {self.baskets / seconds:,.0f} baskets/s)"
        )


def parse_speed(text: str | float | None) -> float | None:
    """``--speed``: a factor > 0 (X times faster than event time); 0 or 'max' = no pacing (None)."""
    if text is None:
        return None
    if isinstance(text, str) and text.strip().lower() in {"max", "0", "inf"}:
        return None
    try:
        speed = float(text)
    except ValueError as exc:
        raise ConfigError(f"--speed {text!r} is not a number; use e.g. 60, or 0/max") from exc
    if speed == 0:
        return None
    if not speed > 0 or speed == float("inf"):
        raise ConfigError(f"--speed must be > 0, or 0/max for no pacing (got {text})")
    return speed


def replay(
    baskets: Sequence[Basket],
    sink: EventSink,
    *,
    speed: float | None = None,
    restamp: bool = False,
    duration_s: float | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> ReplayStats:
    """Send ``baskets`` (already in time order) to ``sink``, one basket's events at a time.

    ``speed``: basket k goes out ``(t_k - t_0) / speed`` seconds after the first (None: no
    waiting). ``restamp``: stamp events with the wall-clock time they are sent (the live
    simulator) instead of the basket's own time. ``duration_s``: stop after this much wall time.
    """
    started = clock()
    first_time = baskets[0].timestamp if baskets else None
    lines = sent = 0
    with tqdm(
        total=len(baskets), unit="basket", disable=not progress, dynamic_ncols=True, mininterval=0.5
    ) as bar:
        for basket in baskets:
            if speed is not None and first_time is not None:
                due = started + (basket.timestamp - first_time).total_seconds() / speed
                wait = due - clock()
                if duration_s is not None:
                    wait = min(wait, started + duration_s - clock())
                if wait > 0:
                    sleep(wait)
            if duration_s is not None and clock() - started >= duration_s:
                break
            for event in basket_events(basket, timestamp=now() if restamp else None):
                sink.send(event)
            lines += len(basket.items)
            sent += 1
            bar.update(1)
            if sent % 100 == 0:
                bar.set_postfix(lines=lines, refresh=False)
        bar.set_postfix(lines=lines)
    return ReplayStats(lines=lines, baskets=sent, seconds=clock() - started)


def pos_producer(kafka: Kafka, client_id: str = "lens-pos") -> Any:
    """The confluent-kafka producer POS records go out with."""
    from confluent_kafka import Producer

    return Producer(as_connection(kafka).client_config({
        "enable.idempotence": True,  # acks=all, no duplicates or reordering on retry
        "linger.ms": 20,
        # gzip: every consumer reads it (aiokafka needs an extra package for lz4).
        "compression.type": "gzip",
        # murmur2, as Java clients and Faust's producer: a customer's records land on the
        # partition Faust's table routing (the query API) expects (librdkafka defaults to CRC32).
        "partitioner": "murmur2_random",
        "client.id": client_id,
    }))


class PosPublisher:
    """Idempotent producer to pos.transactions, keyed by customer id.

    ``send`` queues a record (waiting for room when librdkafka's queue is full); ``close`` waits
    for every acknowledgement and raises RuntimeDependencyError if any record failed.
    """

    def __init__(
        self,
        kafka: Kafka,
        *,
        topic: str = POS_TRANSACTIONS.name,
        flush_timeout_s: float = 60.0,
        producer: Any = None,
    ) -> None:
        self.kafka = as_connection(kafka)
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s
        self._producer = producer if producer is not None else pos_producer(self.kafka)
        self.acknowledged = 0
        self.failures: list[str] = []

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self.failures.append(str(error))
        else:
            self.acknowledged += 1

    def send(self, event: v1.PosEvent) -> None:
        self.send_raw(event_key(event), encode(event))

    def send_raw(self, key: bytes, value: bytes) -> None:
        if self.failures:
            raise RuntimeDependencyError(
                f"Kafka at {self.kafka} refused records for {self.topic}: {self.failures[0]}"
            )
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.1)
        self._producer.poll(0)

    def close(self) -> None:
        remaining = self._producer.flush(self.flush_timeout_s)
        if remaining:
            raise RuntimeDependencyError(
                f"Kafka at {self.kafka} did not acknowledge {remaining} records within "
                f"{self.flush_timeout_s:.0f}s. Check that the broker is up (lens stack status)."
            )
        if self.failures:
            raise RuntimeDependencyError(
                f"{len(self.failures)} records to {self.topic} failed: {self.failures[0]}"
            )

    def __enter__(self) -> "PosPublisher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self._producer.flush(min(self.flush_timeout_s, 5.0))
