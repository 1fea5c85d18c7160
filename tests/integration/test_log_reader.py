"""The funnel worker's LogReader on a real broker (issue 8): the records of a hole as the log has
them (a transaction's commit marker takes an offset that holds no record), and where the group
starts a partition."""

import asyncio
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.funnel.sequence import LogReader


def wait_for(check, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f}s"
        time.sleep(0.2)


def test_the_log_reader_reads_holes_as_the_broker_has_them(kafka_bootstrap):
    topic = f"test.holes-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    transactional = Producer({"bootstrap.servers": kafka_bootstrap,
                              "transactional.id": f"test-holes-{uuid.uuid4().hex[:8]}"})
    transactional.init_transactions(60)
    transactional.begin_transaction()
    for value in (b"a", b"b"):  # offsets 0 and 1; the commit marker takes offset 2
        transactional.produce(topic, key=b"k", value=value, partition=0)
    transactional.commit_transaction(60)
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "test-holes-probe"})
    wait_for(lambda: probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] == 3,
             "the commit marker at offset 2")
    probe.close()
    plain = Producer({"bootstrap.servers": kafka_bootstrap})
    offsets = []
    for value in (b"c", b"d", b"e"):
        plain.produce(topic, key=b"k", value=value, partition=0, headers=[("h", b"1")],
                      on_delivery=lambda error, message: offsets.append(message.offset()))
    assert plain.flush(30) == 0
    assert offsets == [3, 4, 5]

    group = f"test-holes-{uuid.uuid4().hex[:8]}"
    reader = LogReader({"bootstrap.servers": kafka_bootstrap}, group, timeout_s=120)
    key = (topic, 0)
    try:
        found = asyncio.run(reader.read({key: [(0, 3), (4, 5)]}))
        assert {o: r.value for o, r in found[key].items()} == {0: b"a", 1: b"b", 4: b"d"}
        assert found[key][4].headers == [("h", b"1")]
        assert asyncio.run(reader.read({key: [(2, 3)]})) == {key: {}}  # only the marker
        found = asyncio.run(reader.read({key: [(5, 9)]}))  # past the end of the log
        assert sorted(found[key]) == [5]
        # no offset committed: the partition's first offset, or unknown
        assert asyncio.run(reader.starts([key], earliest=True)) == {key: 0}
        assert asyncio.run(reader.starts([key], earliest=False)) == {key: None}
        committer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group,
                              "enable.auto.commit": False})
        committer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
        committer.close()
        assert asyncio.run(reader.starts([key], earliest=True)) == {key: 4}
    finally:
        reader.close()
