"""The funnel agent's batch is done (and Faust may ack its records) only once its table writes
and outputs are on the broker (issue 8), a rebalance while it waits loses nothing, and a record
that Faust delivers past a hole waits for the records before it.

No broker: the records queue on the Faust producer's buffer, and ``deliver`` plays the producer
by resolving their futures. The tables are the worker's own (RocksDB under the test's dir)."""

import asyncio

from faust.types import TP
from intervaltree import Interval, IntervalTree
from prometheus_client import CollectorRegistry

from lens.topics import POS_TRANSACTIONS, SESSIONS
from services.funnel.app import FunnelService
from tests.unit.services.funnel.conftest import closed, line
from tests.unit.services.funnel.test_tables import Event, Message


def pos(partition: int, offset: int, customer: str, value: bytes) -> Event:
    return Event(Message(POS_TRANSACTIONS.name, partition, offset, customer.encode(), value))


def deliver(service: FunnelService) -> list[str]:
    """What the producer does: every queued record reaches the broker. Returns their topics."""
    buffer, topics = service.app.producer.buffer, []
    while buffer.size:
        fut = buffer.pending.get_nowait()
        topics.append(fut.message.channel.get_topic_name())
        fut.set_result(None)
    return topics


async def turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_batch_is_done_only_once_its_table_writes_and_outputs_are_on_the_broker(make_config):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    batch = [pos(3, 0, "c1", line("T1", 1, "c1", "milk", 0)),
             pos(3, 1, "c1", line("T1", 2, "c1", "bread", 1)),
             pos(3, 2, "c1", closed("T1", "c1", 2, line_count=2))]

    async def main() -> None:
        task = asyncio.create_task(service.process_customer_batch(batch))
        await turns()
        # Faust would ack the batch's records (and may commit them) as soon as this returns
        assert not task.done(), "the batch was done before its records were on the broker"
        # while it waits, the state is in the table, not only in the cache
        assert service.state_cache.dirty_partitions() == []
        assert service.tables.get_state("c1").stats.sessions == 1
        changelog = service.states.changelog_topic.get_topic_name()
        assert sorted(deliver(service)) == sorted([changelog, SESSIONS.name])
        await asyncio.wait_for(task, 10)  # bounded: a wrong wait fails here, it does not hang
        assert service.states.take_sent() == []

    asyncio.run(main())


def test_a_partition_revoked_while_its_batch_waits_loses_no_record(make_config):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())

    async def run_batch(batch: list[Event], revoke: bool = False) -> None:
        task = asyncio.create_task(service.process_customer_batch(batch))
        await turns()
        if revoke:
            service.forget({3})  # what the worker's on_partitions_revoked handler does
        deliver(service)
        await asyncio.wait_for(task, 10)

    async def main() -> None:
        await run_batch([pos(3, 0, "c1", line("T1", 1, "c1", "milk", 0)),
                         pos(3, 1, "c1", line("T1", 2, "c1", "bread", 1))], revoke=True)
        # the partition comes back (a worker that owns it now reads the same table)
        await run_batch([pos(3, 2, "c1", closed("T1", "c1", 2, line_count=2))])

    asyncio.run(main())
    state = service.tables.get_state("c1")
    assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)


def test_a_record_past_a_hole_waits_until_the_records_before_it_come_again(make_config):
    """Faust can lose records on the way to the agent around a rebalance (issue 8): the agent
    does not apply a record whose predecessors it has not seen, and has the partition read
    again from the first one missing; replays (records it has seen) are applied as usual."""
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    refetched = []

    async def refetch(tp, offset):
        refetched.append((tp.topic, tp.partition, offset))

    service._refetch = refetch
    p2, close = line("T1", 2, "c1", "bread", 1), closed("T1", "c1", 2, line_count=2)

    async def run_batch(batch: list[Event]) -> None:
        task = asyncio.create_task(service.process_customer_batch(batch))
        await turns()
        deliver(service)
        await asyncio.wait_for(task, 10)

    async def main() -> None:
        await run_batch([pos(3, 0, "c1", line("T1", 1, "c1", "milk", 0)),
                         pos(3, 2, "c1", close)])  # offset 1 (line 2) went missing
        assert refetched == [(POS_TRANSACTIONS.name, 3, 1)]
        assert service.tables.get_state("c1").stats.sessions == 0  # the close waits
        await run_batch([pos(3, 0, "c1", line("T1", 1, "c1", "milk", 0)),  # a replay
                         pos(3, 1, "c1", p2), pos(3, 2, "c1", close)])

    asyncio.run(main())
    state = service.tables.get_state("c1")
    assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)
    assert refetched == [(POS_TRANSACTIONS.name, 3, 1)]
    # a partition that left and came back starts from wherever its committed offset is
    service.forget({3})
    assert service.sequence.admit(POS_TRANSACTIONS.name, 3, 40)
    assert not service.sequence.admit(POS_TRANSACTIONS.name, 3, 42)


def test_a_refetch_drops_the_offset_gap_faust_would_commit(make_config):
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    tp = TP(POS_TRANSACTIONS.name, 3)

    class Consumer:
        """The parts of Faust's consumer that ``_refetch`` uses."""

        def __init__(self) -> None:
            self._gap = {tp: IntervalTree.from_tuples([(1, 7), (9, 12)])}
            self.seeks = []

        def assignment(self):
            return {tp}

        async def seek(self, partition, offset):
            self.seeks.append((partition, offset))

    consumer = Consumer()
    service.app._consumer = consumer
    asyncio.run(service._refetch(tp, 4))
    assert sorted(consumer._gap[tp]) == [Interval(1, 4)]
    assert consumer.seeks == [(tp, 4)]
    asyncio.run(service._refetch(TP(POS_TRANSACTIONS.name, 5), 4))  # not ours (any more)
    assert consumer.seeks == [(tp, 4)]


def test_a_hole_that_never_fills_is_taken_as_a_gap_in_the_log(make_config):
    """A transactional producer's control records take offsets no consumer ever sees: after
    ``max_rereads`` reads the record past the hole is applied instead of reading forever."""
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    sequence, topic = service.sequence, POS_TRANSACTIONS.name
    assert sequence.admit(topic, 3, 0)
    for _ in range(sequence.max_rereads):
        assert not sequence.admit(topic, 3, 2)  # offset 1 is a control record
        assert sequence.take_holes() == {(topic, 3): 1}
    assert sequence.admit(topic, 3, 2)
    assert sequence.take_holes() == {}
    assert sequence.admit(topic, 3, 3)
