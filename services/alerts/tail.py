"""``lens alerts tail``: print alerts as they arrive, one readable line each.

Reads with a throw-away consumer group and never commits, so it does not disturb the real
subscribers' offsets.
"""

import threading
import uuid
from collections.abc import Callable

from lens.errors import DataError, RuntimeDependencyError
from services.alerts.alert import ALERT_TOPICS, alert_from_record
from services.kafka.connection import Kafka, as_connection

__all__ = ["tail_alerts"]


def tail_alerts(
    kafka: Kafka,
    *,
    topics: tuple[str, ...] = tuple(ALERT_TOPICS),
    from_beginning: bool = False,
    limit: int | None = None,
    stop: threading.Event | None = None,
    idle_timeout_s: float | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Print alerts until ``stop``, ``limit`` alerts, or ``idle_timeout_s`` without one; returns
    the number printed."""
    import time

    from confluent_kafka import Consumer

    consumer = Consumer(
        as_connection(kafka).client_config({
            "group.id": f"lens-alerts-tail-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        })
    )
    consumer.subscribe(list(topics))
    stop = stop or threading.Event()
    shown = 0
    last = time.monotonic()
    try:
        while not stop.is_set() and (limit is None or shown < limit):
            if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                break
            record = consumer.poll(0.5)
            if record is None:
                continue
            if record.error():
                if record.error().fatal():
                    raise RuntimeDependencyError(f"Kafka consumer failed: {record.error()}")
                continue
            last = time.monotonic()
            try:
                say(alert_from_record(record.topic(), record.value()).line())
            except DataError as exc:
                say(f"UNREADABLE {record.topic()}[{record.partition()}]@{record.offset()}: {exc}")
            shown += 1
    finally:
        consumer.close()
    return shown
