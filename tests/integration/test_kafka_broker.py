"""The local broker is real Apache Kafka 4.1 and behaves like one."""

import os
import threading
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from services.kafka import cluster_info
from services.stack import LocalKafka


@pytest.mark.skipif(bool(os.environ.get("LENS_KAFKA_BOOTSTRAP")), reason="external cluster")
def test_broker_is_apache_kafka_4_1_in_kraft_mode(kafka_settings):
    info = cluster_info(kafka_settings.bootstrap_servers)
    # KRaft combined mode: the single node is both the only broker and the active controller.
    assert info.broker_ids == (1,)
    assert info.controller_id == 1
    assert len(info.cluster_id) == 22
    status = LocalKafka(kafka_settings).status()
    assert status.running
    assert status.version is not None and status.version.startswith("4.1.")


def test_consumer_group_over_two_partitions_receives_every_message(kafka_bootstrap):
    topic = f"test.group-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    sent = {f"message-{i}" for i in range(200)}
    for value in sorted(sent):
        producer.produce(topic, key=value[-2:], value=value)
    assert producer.flush(30) == 0

    group = f"group-{uuid.uuid4().hex[:8]}"
    received: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}
    assigned: dict[str, set[int]] = {"a": set(), "b": set()}
    done = threading.Event()

    def consume(name: str) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
            }
        )
        consumer.subscribe(
            [topic], on_assign=lambda _c, parts: assigned[name].update(p.partition for p in parts)
        )
        try:
            while not done.is_set():
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    received[name].append((message.partition(), message.value().decode()))
        finally:
            consumer.close()

    threads = [threading.Thread(target=consume, args=(name,)) for name in received]
    for thread in threads:
        thread.start()
    for _ in range(120):
        if len(received["a"]) + len(received["b"]) >= len(sent):
            break
        done.wait(0.5)
    done.set()
    for thread in threads:
        thread.join(30)

    values = [value for messages in received.values() for _, value in messages]
    assert sorted(values) == sorted(sent)  # every message once, none lost
    assert {p for messages in received.values() for p, _ in messages} == {0, 1}
    assert sorted(assigned["a"] | assigned["b"]) == [0, 1]
