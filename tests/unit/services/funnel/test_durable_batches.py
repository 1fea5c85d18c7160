"""The funnel agent's batch is done (and Faust may ack its records) only once its table writes
and outputs are on the broker (issue 8), a rebalance while it waits loses nothing, the records a
hole leaves out (Faust loses some around a rebalance) are read from the broker and applied
before the record past it, and Faust commits nothing past what the agent made durable. The store
agent has the same guarantees over the store topic.

No broker: the records queue on the Faust producer's buffer, and ``deliver`` plays the producer
by resolving their futures; ``Log`` plays the broker's log for the agent's ``LogReader``. The
tables are the worker's own (RocksDB under the test's dir)."""

import asyncio
import json
from types import SimpleNamespace

from faust.types import TP
from prometheus_client import CollectorRegistry

from lens import v1
from lens.stockout import ContributionUpdate
from lens.topics import (
    INVENTORY_RESUPPLIES,
    POS_TRANSACTIONS,
    PREDICTIONS,
    SESSIONS,
    STOCKOUT_ALERTS,
)
from services.funnel.app import FunnelService, internal_topics
from services.funnel.predictor import Forecast
from services.funnel.processor import Output, Result, encode_store_event, store_topic_name
from services.funnel.sequence import LogRecord
from services.funnel.stockout import encode_resupply_event, load_store, plan_key
from tests.unit.services.funnel.conftest import closed, line
from tests.unit.services.funnel.test_processor import prediction
from tests.unit.services.funnel.test_tables import Event, Message


def pos(partition: int, offset: int, customer: str, value: bytes) -> Event:
    return Event(Message(POS_TRANSACTIONS.name, partition, offset, customer.encode(), value))


class Log:
    """What ``LogReader`` reads from the broker: committed offsets and records by offset."""

    def __init__(self, records: list[Event] = (), committed: dict | None = None) -> None:
        self.records = {(e.message.topic, e.message.partition, e.message.offset): e.message
                        for e in records}
        self.committed = committed or {}
        self.reads: list[dict] = []
        self.starts_asked: list[set] = []

    async def starts(self, keys, earliest):
        self.starts_asked.append(set(keys))
        return {key: self.committed.get(key) for key in keys}

    async def read(self, holes):
        self.reads.append(dict(holes))
        found = {}
        for (topic, partition), ranges in holes.items():
            found[topic, partition] = {
                offset: LogRecord(topic, partition, offset, m.key, m.value, m.headers)
                for start, end in ranges for offset in range(start, end)
                if (m := self.records.get((topic, partition, offset))) is not None
            }
        return found


def new_service(make_config, log: Log | None = None) -> FunnelService:
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    service.log_reader = log or Log()
    return service


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


async def until_done(service: FunnelService, task: asyncio.Task) -> list[str]:
    """Let the producer deliver until ``task`` (a batch) is done; the topics delivered."""
    topics = []
    for _ in range(20):
        await turns()
        topics += deliver(service)
        if task.done():
            break
    await asyncio.wait_for(task, 10)  # bounded: a wrong wait fails here, it does not hang
    return topics


def test_a_batch_is_done_only_once_its_outputs_and_then_its_table_writes_are_on_the_broker(
        make_config):
    service = new_service(make_config)
    batch = [pos(3, 0, "c1", line("T1", 1, "c1", "milk", 0)),
             pos(3, 1, "c1", line("T1", 2, "c1", "bread", 1)),
             pos(3, 2, "c1", closed("T1", "c1", 2, line_count=2))]

    async def main() -> None:
        task = asyncio.create_task(service.process_customer_batch(batch))
        await turns()
        # Faust would ack the batch's records (and may commit them) as soon as this returns
        assert not task.done(), "the batch was done before its records were on the broker"
        # outputs first: until they are on the broker the state is not written (a crash now
        # replays the batch, which sends them again)
        assert service.tables.get_state("c1") is None
        assert deliver(service) == [SESSIONS.name]
        await turns()
        assert not task.done(), "the batch was done before its state was on the broker"
        assert service.state_cache.dirty_partitions() == []
        assert service.tables.get_state("c1").stats.sessions == 1
        changelog = service.states.changelog_topic.get_topic_name()
        assert deliver(service) == [changelog]
        await asyncio.wait_for(task, 10)  # bounded: a wrong wait fails here, it does not hang
        assert service.states.take_sent() == []

    asyncio.run(main())


def test_a_partition_revoked_while_its_batch_waits_loses_no_record(make_config):
    """A rebalance while a batch waits for its outputs drops the revoked partition's changes;
    its records are not committed, so when the partition comes back they are read again from
    the committed offset and applied once."""
    first = [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2), pos(3, 2, "c1", CLOSE)]
    service = new_service(make_config, Log(first, committed={(POS_TRANSACTIONS.name, 3): 0}))

    async def main() -> None:
        task = asyncio.create_task(service.process_customer_batch(first))
        await turns()
        service.forget({3})  # what the worker's on_partitions_revoked handler does
        await until_done(service, task)
        assert service.tables.get_state("c1") is None  # its changes went with the partition
        # the partition comes back: its next record starts it at the committed offset
        await until_done(service, asyncio.create_task(service.process_customer_batch(
            [pos(3, 3, "c1", line("T2", 1, "c1", "tea", 3))])))

    asyncio.run(main())
    state = service.tables.get_state("c1")
    assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)


async def run_batch(service: FunnelService, batch: list[Event]) -> None:
    await until_done(service, asyncio.create_task(service.process_customer_batch(batch)))


P1, P2 = line("T1", 1, "c1", "milk", 0), line("T1", 2, "c1", "bread", 1)
CLOSE = closed("T1", "c1", 2, line_count=2)


def test_the_records_a_hole_leaves_out_are_read_from_the_broker_and_applied_first(make_config):
    """Faust can lose records on the way to the agent around a rebalance (issue 8): before a
    record past a hole, the agent reads the records of the hole from the broker and applies
    them, in order; records it has applied already (replays) change nothing."""
    log = Log([pos(3, 1, "c1", P2)])
    service = new_service(make_config, log)

    async def main() -> None:
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 2, "c1", CLOSE)])  # 1 went missing
        assert log.reads == [{(POS_TRANSACTIONS.name, 3): [(1, 2)]}]
        state = service.tables.get_state("c1")
        assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2),  # Faust replays
                                  pos(3, 2, "c1", CLOSE)])

    asyncio.run(main())
    state = service.tables.get_state("c1")
    assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)
    assert len(log.reads) == 1
    assert service.sequence.expected((POS_TRANSACTIONS.name, 3)) == 3


def test_a_partition_starts_at_the_committed_offset_also_when_its_first_records_are_lost(
        make_config):
    """The hole can be at the very start of a partition the worker was just given: the first
    record since the assignment is checked against the group's committed offset."""
    key = (POS_TRANSACTIONS.name, 3)
    log = Log([pos(3, 5, "c1", P1), pos(3, 6, "c1", P2)], committed={key: 5})
    service = new_service(make_config, log)

    async def main() -> None:
        await run_batch(service, [pos(3, 7, "c1", CLOSE)])
        assert log.starts_asked == [{key}] and log.reads == [{key: [(5, 7)]}]
        service.forget({3})  # revoked: the next assignment starts from the committed offset
        log.committed[key] = 8
        await run_batch(service, [pos(3, 8, "c1", line("T2", 1, "c1", "tea", 60))])
        assert len(log.starts_asked) == 2 and len(log.reads) == 1

    asyncio.run(main())
    state = service.tables.get_state("c1")
    assert (state.stats.sessions, state.stats.lines_in_sessions) == (1, 2)


def test_an_offset_that_is_not_in_the_log_is_passed_over(make_config):
    """A transactional producer's control records take offsets no consumer ever sees: the
    broker has nothing there, so the record past them is applied."""
    key = (POS_TRANSACTIONS.name, 4)
    log = Log()
    service = new_service(make_config, log)

    async def main() -> None:
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2),
                                  pos(3, 2, "c1", CLOSE)])
        # partition 4: offset 0 is a record that does not decode, 1 a control record
        await run_batch(service, [pos(4, 0, "c2", b"?"), pos(4, 2, "c2", b"?")])
        assert log.reads == [{key: [(1, 2)]}]

    asyncio.run(main())
    assert service.sequence.expected(key) == 3


class FixedPredictor:
    """The model server: predicts milk for the customer's latest session."""

    async def predict(self, state) -> Forecast:
        index = state.sessions[-1].session_index
        return Forecast(prediction(state.customer_id, index, ["milk"]), cluster=2)


class PredictionsTopic:
    """lens.predictions as ``_publish_prediction`` sees it: each record is on the broker once
    its send is awaited, at the partition's next offset."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    async def send(self, *, key, value, partition, headers):
        self.sent.append((partition, key))
        on_broker = asyncio.get_running_loop().create_future()
        on_broker.set_result(SimpleNamespace(offset=len(self.sent) - 1))
        return on_broker


class Ticks:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    def send_soon(self, *, key, value, partition) -> None:
        self.sent.append((partition, value))


def predicting_service(make_config) -> tuple[FunnelService, PredictionsTopic, Ticks]:
    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry(),
                            predictor=FixedPredictor())
    service.log_reader = Log()
    service.outputs[PREDICTIONS.name] = predictions = PredictionsTopic()
    service.ticks = ticks = Ticks()
    return service, predictions, ticks


def tick(service: FunnelService, partition: int, offset: int, value: bytes = b"") -> Event:
    ticks_topic = internal_topics(service.config)[0].name
    return Event(Message(ticks_topic, partition, offset, None, value))


def test_a_prediction_on_the_broker_is_applied_in_the_next_batch_of_its_partition(make_config):
    """The agent does not read lens.predictions back: a prediction the dispatcher got on the
    broker is applied in the agent's next batch of the customer's partition (a tick makes one
    when nothing else comes), and its demand goes out with that batch."""
    service, predictions, ticks = predicting_service(make_config)

    async def main() -> list[str]:
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2),
                                  pos(3, 2, "c1", CLOSE)])
        await turns()  # the dispatcher predicts and publishes
        assert predictions.sent == [(3, b"c1")] and [p for p, _ in ticks.sent] == [3]
        assert service.processor.metas[3].pending == {"c1"}  # not applied yet
        return await until_done(service, asyncio.create_task(
            service.process_customer_batch([tick(service, 3, 0, ticks.sent[0][1])])))

    delivered = asyncio.run(main())
    state = service.tables.get_state("c1")
    assert state.last_prediction.prediction_id == "c1:1" and state.cluster == 2
    assert service.processor.metas[3].pending == set()
    assert store_topic_name(service.config) in delivered  # Algorithm 2's demand update


def test_the_tick_for_landed_predictions_does_not_sweep(make_config):
    """Only the timer's tick sweeps: a basket idle against the partition's watermark (another
    customer's records are a day ahead) stays open through a landed predictions' tick."""
    service, predictions, ticks = predicting_service(make_config)
    ahead = line("U1", 1, "c2", "tea", 2 * 86_400)  # 2 days on: the watermark moves past c1's

    async def main() -> None:
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 1, "c2", ahead)])
        await run_batch(service, [tick(service, 3, 0, b"landed")])
        assert service.tables.get_state("c1").open_basket is not None
        await run_batch(service, [tick(service, 3, 1)])  # the timer's tick

    asyncio.run(main())
    assert service.tables.get_state("c1").open_basket is None  # closed as idle by the sweep


def test_a_prediction_of_a_partition_given_up_is_not_applied(make_config):
    """A partition that moved to another worker: the prediction that landed for it is dropped,
    not applied when the partition comes back (its owner meanwhile wrote the table)."""
    service, predictions, _ = predicting_service(make_config)

    async def main() -> None:
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2),
                                  pos(3, 2, "c1", CLOSE)])
        await turns()
        assert predictions.sent == [(3, b"c1")]
        service.forget({3})
        await run_batch(service, [tick(service, 3, 0)])

    asyncio.run(main())
    assert service.tables.get_state("c1").last_prediction is None


class Consumer:
    """Faust's consumer as the commit guard sees it: what it commits."""

    def __init__(self) -> None:
        self.commits = []

    async def _commit(self, offsets) -> bool:
        self.commits.append(dict(offsets))
        return True


def test_faust_commits_no_offset_past_what_the_agent_made_durable(make_config):
    """Faust counts offsets it passed over as acked, the record past them included, which the
    agent may not have applied yet: the commit is bounded by the agent's durable position."""
    service = new_service(make_config)
    tp, other = TP(POS_TRANSACTIONS.name, 3), TP("a-topic-no-agent-guards", 1)

    consumer = Consumer()
    service.install_commit_guard(consumer)
    service.install_commit_guard(consumer)  # once per consumer, whatever the rebalances

    async def main() -> None:
        # nothing applied since the assignment: nothing of the partition is committed
        assert await consumer._commit({tp: 10, other: 4})
        assert not await consumer._commit({tp: 10})
        task = asyncio.create_task(service.process_customer_batch(
            [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2)]))
        await turns()
        assert not await consumer._commit({tp: 10})  # applied, not yet on the broker
        await until_done(service, task)
        assert await consumer._commit({tp: 10})
        assert await consumer._commit({tp: 1})

    asyncio.run(main())
    assert consumer.commits == [{other: 4}, {tp: 2}, {tp: 1}]


# -- the store agent: the same guarantees over the store topic ------------------------------------

DAY = "2026-03-03"
AS_OF = 1_772_409_600_000_000  # 2026-03-02T00:00Z


def store(service: FunnelService, partition: int, offset: int, value: bytes) -> Event:
    return Event(Message(store_topic_name(service.config), partition, offset, b"S1", value))


def plan(units: int) -> bytes:
    return encode_resupply_event(
        v1.Resupply(store_id="S1", product_id="milk", day=DAY, quantity=units))


def wants(customer: str, units: int) -> bytes:
    return encode_store_event(ContributionUpdate(
        "S1", customer, {("milk", DAY): units * 1_000_000}, AS_OF, ("lens", 1, "")))


def residual(service: FunnelService) -> float:
    return load_store(service.store_tables, "S1", service.config).stockout.residual("milk", DAY)


async def run_store_batch(service: FunnelService, batch: list[Event]) -> list[str]:
    """The batch through the store agent; the topics of what it sent."""
    return await until_done(service, asyncio.create_task(service.process_store_batch(batch)))


def test_a_store_batch_is_done_only_once_its_alerts_and_then_its_table_writes_are_on_the_broker(
        make_config):
    service = new_service(make_config)
    batch = [store(service, 2, 0, plan(1)), store(service, 2, 1, wants("c1", 3))]

    async def main() -> None:
        task = asyncio.create_task(service.process_store_batch(batch))
        await turns()
        assert not task.done(), "the batch was done before its records were on the broker"
        assert load_store(service.store_tables, "S1", service.config) is None
        assert deliver(service) == [STOCKOUT_ALERTS.name]  # the alert first
        await turns()
        assert not task.done(), "the batch was done before its state was on the broker"
        assert service.store_cache.dirty_partitions() == []
        assert residual(service) == -2.0
        changelog = service.stores.changelog_topic.get_topic_name()
        # then the store's plan day, contributor, list of contributors, day and head: one
        # changelog record each
        assert deliver(service) == [changelog] * 5
        await asyncio.wait_for(task, 10)
        assert service.stores.take_sent() == []
        assert service.stores.get(plan_key("S1", DAY)) is not None

    asyncio.run(main())


def test_the_store_events_a_hole_leaves_out_are_read_from_the_broker_and_applied_first(
        make_config):
    """Faust loses store events around a rebalance as it loses customer records: the store agent
    reads those of a hole from the broker and applies them before the event past it."""
    service = new_service(make_config)
    key = (store_topic_name(service.config), 2)
    log = service.log_reader = Log([store(service, 2, 1, wants("c1", 3))])

    async def main() -> None:
        # c1's demand (offset 1) went missing: without it c2's is no shortfall, no alert
        sent = await run_store_batch(service, [store(service, 2, 0, plan(1)),
                                               store(service, 2, 2, wants("c2", 1))])
        assert log.reads == [{key: [(1, 2)]}]
        assert residual(service) == -3.0 and STOCKOUT_ALERTS.name in sent
        await run_store_batch(service, [store(service, 2, 0, plan(1)),  # Faust replays
                                        store(service, 2, 1, wants("c1", 3)),
                                        store(service, 2, 2, wants("c2", 1))])

    asyncio.run(main())
    assert residual(service) == -3.0
    assert len(log.reads) == 1
    assert service.sequence.expected(key) == 3


def test_a_store_partition_starts_at_the_committed_offset_also_when_its_first_records_are_lost(
        make_config):
    service = new_service(make_config)
    key = (store_topic_name(service.config), 2)
    log = service.log_reader = Log([store(service, 2, 5, plan(1)),
                                    store(service, 2, 6, wants("c1", 3))], committed={key: 5})

    async def main() -> None:
        await run_store_batch(service, [store(service, 2, 7, wants("c2", 1))])
        assert log.starts_asked == [{key}] and log.reads == [{key: [(5, 7)]}]

    asyncio.run(main())
    assert residual(service) == -3.0


def test_faust_commits_no_store_topic_offset_past_what_the_store_agent_made_durable(make_config):
    service = new_service(make_config)
    tp = TP(store_topic_name(service.config), 2)
    consumer = Consumer()
    service.install_commit_guard(consumer)

    async def main() -> None:
        assert not await consumer._commit({tp: 10})  # nothing applied since the assignment
        task = asyncio.create_task(service.process_store_batch(
            [store(service, 2, 0, plan(1)), store(service, 2, 1, wants("c1", 3))]))
        await turns()
        assert not await consumer._commit({tp: 10})  # applied, not yet on the broker
        await until_done(service, task)
        assert await consumer._commit({tp: 10})

    asyncio.run(main())
    assert consumer.commits == [{tp: 2}]


def test_a_revoked_partition_of_one_agent_leaves_the_same_number_of_the_other_in_sequence(
        make_config):
    """The customer topics and the store topic are assigned independently: losing partition 3 of
    one says nothing of partition 3 of the other."""
    service = new_service(make_config)
    topic = store_topic_name(service.config)
    customers, stores = (POS_TRANSACTIONS.name, 3), (topic, 3)

    async def main() -> None:
        await run_batch(service, [pos(3, 0, "c1", P1), pos(3, 1, "c1", P2)])
        await run_store_batch(service, [store(service, 3, 0, plan(1))])
        await service.app.on_partitions_revoked.send({TP(topic, 3)})
        assert service.sequence.expected(stores) is None
        assert service.sequence.expected(customers) == 2
        await run_store_batch(service, [store(service, 3, 1, wants("c1", 3))])
        await service.app.on_partitions_revoked.send({TP(POS_TRANSACTIONS.name, 3)})
        assert service.sequence.expected(customers) is None
        assert service.sequence.expected(stores) == 2
        # an assignment without a partition forgets it, and only it
        await run_batch(service, [pos(3, 2, "c1", CLOSE)])
        await service.app.on_partitions_assigned.send({TP(POS_TRANSACTIONS.name, 3)})
        assert service.sequence.expected(stores) is None
        assert service.sequence.expected(customers) == 3
        await run_store_batch(service, [store(service, 3, 2, wants("c2", 1))])
        await service.app.on_partitions_assigned.send({TP(topic, 3)})
        assert service.sequence.expected(customers) is None
        assert service.sequence.expected(stores) == 3

    asyncio.run(main())


def test_resupplies_a_hole_leaves_out_are_read_from_the_broker_and_passed_on_first(
        make_config, monkeypatch):
    """The resupplies agent, which re-keys inventory.resupplies onto the store topic, reads the
    plan rows Faust lost around a rebalance from the broker too, in offset order."""
    days = ["2026-03-03", "2026-03-04", "2026-03-05"]
    rows = [Event(Message(INVENTORY_RESUPPLIES.name, 1, offset, b"S1", v1.Resupply(
        store_id="S1", product_id="milk", day=day, quantity=2).SerializeToString()))
        for offset, day in enumerate(days)]
    log = Log(rows, committed={(INVENTORY_RESUPPLIES.name, 1): 0})
    service = new_service(make_config, log)
    sent = []

    def send_soon(outputs):
        sent.extend(outputs)
        return []

    monkeypatch.setattr(service, "_send_soon", send_soon)
    asyncio.run(service.process_resupply_batch(rows[2:]))  # offsets 0 and 1 never arrived
    assert log.reads == [{(INVENTORY_RESUPPLIES.name, 1): [(0, 2)]}]
    assert [json.loads(out.value)["day"] for out in sent] == days
    assert {out.topic for out in sent} == {store_topic_name(service.config)}
    assert service.sequence.expected((INVENTORY_RESUPPLIES.name, 1)) == 3


def test_a_customer_batch_sends_each_store_one_record_of_its_demand_updates(
        make_config, monkeypatch):
    service = new_service(make_config)
    topic = store_topic_name(service.config)
    demand = [Output(topic, store, b'{"t":"demand","n":%d}' % n)
              for n, store in enumerate([b"S1", b"S2", b"S1"])]
    session = Output(SESSIONS.name, b"c1", b"a session")
    monkeypatch.setattr(service, "handle_customer_batch",
                        lambda events, read, write: Result([demand[0], session, *demand[1:]]))
    sent = []

    def send_soon(outputs):
        sent.extend(outputs)
        return []

    monkeypatch.setattr(service, "_send_soon", send_soon)
    asyncio.run(service.process_customer_batch([pos(3, 0, "c1", P1)]))
    assert [(out.topic, out.key) for out in sent] == [
        (SESSIONS.name, b"c1"), (topic, b"S1"), (topic, b"S2")]
    assert sent[1].value == b'{"t":"demands","events":[{"t":"demand","n":0},{"t":"demand","n":2}]}'
