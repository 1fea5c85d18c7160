"""The end-to-end demo behind ``make demo``: today, a protobuf event round trip through real Kafka."""

import datetime as dt
import uuid
from collections.abc import Callable

from confluent_kafka import DeserializingConsumer, SerializingProducer
from confluent_kafka.serialization import StringDeserializer, StringSerializer
from google.protobuf.message import Message

from lens import v1
from lens.errors import RuntimeDependencyError
from lens.settings import LensSettings
from lens.topics import POS_TRANSACTIONS
from services.kafka import ProtobufDeserializer, ProtobufSerializer, create_topics, wait_until_ready
from services.stack import LocalKafka

__all__ = ["run_demo", "sample_transaction"]


def sample_transaction() -> v1.PosEvent:
    timestamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    line = v1.TransactionLine(
        transaction_id=f"T-{uuid.uuid4().hex[:8]}",
        line_no=1,
        customer_id="01104905",
        store_id="S1",
        product_id="4710199010372",
        quantity=2,
        amount=30.0,
    )
    line.timestamp.FromDatetime(timestamp)
    return v1.PosEvent(line=line)


def round_trip(bootstrap: str, event: v1.PosEvent, timeout_s: float = 30.0) -> Message:
    """Produce ``event`` to pos.transactions and read it back through a fresh consumer group."""
    producer = SerializingProducer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "key.serializer": StringSerializer(),
            "value.serializer": ProtobufSerializer(),
        }
    )
    producer.produce(POS_TRANSACTIONS.name, key=event.line.customer_id, value=event)
    if producer.flush(timeout_s) != 0:
        raise RuntimeDependencyError(f"Kafka at {bootstrap} did not acknowledge the event")
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lens-demo-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "key.deserializer": StringDeserializer(),
            "value.deserializer": ProtobufDeserializer(POS_TRANSACTIONS.value_type),
        }
    )
    consumer.subscribe([POS_TRANSACTIONS.name])
    try:
        for _ in range(int(timeout_s)):
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if message.value().line.transaction_id == event.line.transaction_id:
                return message.value()
    finally:
        consumer.close()
    raise RuntimeDependencyError(f"the event did not come back from {POS_TRANSACTIONS.name}")


def run_demo(settings: LensSettings, say: Callable[[str], None] = print) -> None:
    broker = LocalKafka(settings) if settings.uses_local_kafka else None
    try:
        if broker is not None:
            say(f"starting Apache Kafka at {settings.bootstrap_servers} ...")
            status = broker.start()
            say(f"Kafka {status.version} is up (log: {status.log})")
        else:
            wait_until_ready(settings.bootstrap_servers, settings.kafka_start_timeout_s)
            say(f"using the Kafka cluster at {settings.bootstrap_servers}")
        created = create_topics(settings.bootstrap_servers)
        say(f"topics created: {', '.join(created) if created else 'none (all existed)'}")
        event = sample_transaction()
        received = round_trip(settings.bootstrap_servers, event)
        say(f"round trip through {POS_TRANSACTIONS.name}:\n{received}")
        if received != event:
            raise RuntimeDependencyError("the event came back changed")
        say("the TransactionLine came back unchanged")
    finally:
        if broker is not None:
            broker.stop()
            say("Kafka stopped")
