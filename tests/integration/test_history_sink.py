"""The history sink against a real broker: a sink that dies after writing a batch but before
committing it hands the batch to the next sink of its group, and every session still lands in
the store exactly once; a session the producer sent twice is stored once too."""

import datetime as dt
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from lens import v1
from lens.history import SessionStore
from lens.topics import SESSIONS
from services.history import HistorySink, SinkConfig
from services.kafka import KafkaConnection, create_topics
from tests.integration.processes import commit_at_end

WAIT_S = 60.0  # safety net only: the sinks stop after the records they expect


def sessions(prefix: str, customers: int, per_customer: int) -> list[v1.Session]:
    out = []
    for c in range(customers):
        for index in range(1, per_customer + 1):
            session = v1.Session(customer_id=f"{prefix}-{c}", store_id="S1",
                                 transaction_id=f"{prefix}-{c}-{index}", session_index=index)
            session.timestamp.FromDatetime(dt.datetime(2026, 1, index, 10, 0))
            session.items.add(product_id=f"P{index}", quantity=1.0, amount=2.5)
            out.append(session)
    return out


def publish(kafka, messages):
    producer = Producer(kafka.client_config({"enable.idempotence": True}))
    for message in messages:
        producer.produce(SESSIONS.name, key=message.customer_id.encode(), value=message.SerializeToString())
    assert producer.flush(30) == 0


def retrying(call):
    """``call()``, retried while a fresh broker still elects leaders and a group coordinator."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return call()
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def ends(consumer) -> list[int]:
    """The end offset of every lens.sessions partition."""
    return retrying(lambda: [
        consumer.get_watermark_offsets(TopicPartition(SESSIONS.name, p), timeout=10)[1]
        for p in range(SESSIONS.partitions)
    ])


class DiesBeforeCommitting:
    """A real consumer whose process 'dies' between the store write and the offset commit."""

    def __init__(self, consumer):
        self._consumer = consumer

    def commit(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return getattr(self._consumer, name)


def run_sink(kafka, store, group, *, records, consumer=None):
    stop = threading.Event()
    safety = threading.Timer(WAIT_S, stop.set)
    safety.start()
    try:
        return HistorySink(kafka, store, config=SinkConfig(group_id=group), consumer=consumer).run(
            stop, max_records=records
        )
    finally:
        safety.cancel()


def test_sessions_land_exactly_once_after_a_redelivery(kafka_settings, tmp_path):
    kafka = KafkaConnection.from_settings(kafka_settings)
    create_topics(kafka, [SESSIONS])
    group = f"history-{uuid.uuid4().hex[:8]}"
    commit_at_end(kafka.bootstrap, group, [SESSIONS])  # the broker holds other tests' sessions
    published = sessions(uuid.uuid4().hex[:6], customers=12, per_customer=3)
    publish(kafka, published + published[:5])  # the first five twice, as a producer retry would

    with SessionStore(tmp_path / "history.sqlite") as store:
        config = kafka.client_config({
            "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
        })
        dying = DiesBeforeCommitting(Consumer(config))
        first = run_sink(kafka, store, group, records=len(published) + 5, consumer=dying)
        assert (first.stored, first.duplicates) == (len(published), 5)

        # The group never saw a commit: the next sink gets every record again.
        second = run_sink(kafka, store, group, records=len(published) + 5)
        assert (second.stored, second.duplicates) == (0, len(published) + 5)

        assert store.counts() == {"sessions": 36, "lines": 36, "customers": 12}
        exported = tmp_path / "history.csv"
        assert store.export_csv(exported) == 36

    # And this time the offsets were committed at the ends.
    consumer = Consumer(kafka.client_config({"group.id": group}))
    try:
        partitions = [TopicPartition(SESSIONS.name, p) for p in range(SESSIONS.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        assert [p.offset for p in committed] == ends(consumer)
    finally:
        consumer.close()
