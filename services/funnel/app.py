"""The funnel-state Faust app: ``FunnelService(config).app`` is what ``lens worker funnel`` runs.

    pos.transactions ─┐                      ┌─> lens.sessions, lens.alerts.anomaly, lens.dlq
                      ├─> agent "funnel" ────┤    (customer-keyed, table "funnel-state":
    <id>-ticks ───────┘   (8 partitions)     │     customer -> FunnelState bytes)
                                             └─> <id>-store-events (key = store) ─┐
    inventory.resupplies ─> agent "resupplies" ─> <id>-store-events ──────────────┤
                                                                                  v
            agent "stores" (4 partitions, table "store-stockout": a store in parts, store ->
                            head, store|contributors, store|contributor|c, store|day|d,
                            store|plan|d: see services.funnel.stockout)
                                                                   ─> lens.alerts.stockout
    model server <─ PredictionDispatcher (background) ─> lens.predictions (customer's partition)
                                                      └─> the funnel agent's next batch of it

Every input is consumed as raw bytes, so a record that does not decode is dead-lettered with its
original key and value; the processors (``services.funnel.processor`` and ``.stockout``) decode
with ``lens.codec``. A customer's records must all land on one partition of pos.transactions (the
POS keys them by customer_id); the worker sends sessions and predictions to that same partition
number of their topics, whatever partitioner the POS used.

Predictions: once a prediction is on the broker (lens.predictions), the dispatcher hands it to
the funnel agent, which applies it to the customer's state in its next batch of the customer's
partition (``FunnelService._apply_landed``; a tick on the partition, one that does not sweep,
makes that batch happen when the stream is quiet). The agent does not read lens.predictions
back, one more record through Faust per prediction, which cost Ta-Feng's streaming efficiency
about a twentieth (BENCHMARKS.md). A prediction on the broker whose state
write a crash or a rebalance lost leaves its customer pending, and the sweep predicts that
session again: the same prediction id, for subscribers to dedupe on, and the store's demand
replaces it by itself.

Timer: every ``sweep_interval_s`` the worker sends a tick to each of its pos.transactions
partitions on the internal ``<app_id>-ticks`` topic (co-partitioned, so the tick reaches the
agent that owns the partition's table); the agent then runs ``FunnelProcessor.on_sweep``: idle
baskets close against the partition's event-time watermark, advanced by processing time when
the partition is quiet (see ``services.funnel.processor``), and pending predictions are retried.
Faust only lets an agent's event change a table, which is why the timer does not sweep itself.

Batches: the funnel agent takes its records ``batch_max`` at a time (waiting at most
``batch_within_s`` for them), handles each in order against decoded customer states kept in
``services.funnel.tables.StateCache``, queues the batch's outputs on the producer and waits until
they are on the broker; then it writes each customer it changed to the table once, in an event of
the customer's partition, waits until those table writes (changelog records) are on the broker
too, and only then lets Faust ack the batch (``FunnelService.process_customer_batch`` says why
Faust's own flush before a commit is not enough, ``_outputs_then_state`` why outputs go first).
So an offset is committed only for a record whose effect is durable, also when its partition
moves to another worker or the worker stops: as with one record at a time, a crash or a
rebalance replays the records since the last commit, and the state recognises those it has
already seen (see ``services.funnel.processor``); a crash between the outputs and the state
sends that batch's outputs again, identical. Faust loses
records on the way to the agent around a rebalance (``services.funnel.sequence``): the agent
applies each partition's records in offset order from the group's committed offset, reads the
records a hole leaves out straight from the broker and applies them first, and Faust commits no
offset past what the agent has applied and made durable (``FunnelService.install_commit_guard``).

The store agent works the same way (``FunnelService.process_store_batch``): micro-batches of
store events against decoded store records kept in ``services.funnel.stockout.StoreCache``, each
changed part of a store written once per batch after its alerts are on the broker, the batch acked once
those writes are too. A replayed demand event is recognised by its as_of, a replayed resupply
sets the same plan again. Faust loses store events and resupply records around a rebalance as it
loses customer records: the store agent and the resupplies agent (which re-keys resupplies onto
the store topic, in batches too) read them from the broker and bound their commits in the same
way (one ``Sequence`` for the three agents).

Web (``web_bind``:``web_port``): ``/metrics`` (Faust's Prometheus sensors and ``lens_funnel_*``),
the query API (``/v1/customers/{id}``, ``/v1/stores/{id}``, ``/openapi.json``: see
``services.funnel.query``), and for operators ``/funnel/customers/{id}/`` (a customer's raw
table value, on this worker only) and ``/funnel/stats/``.
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.streams import _current_event
from google.protobuf.message import Message
from mode.services import WaitResults
from prometheus_client import CollectorRegistry

from lens.codec import encode
from lens.stream import FunnelState
from lens.topics import (
    ALL_TOPICS,
    INVENTORY_RESUPPLIES,
    POS_TRANSACTIONS,
    PREDICTIONS,
    STOCKOUT_ALERTS,
    Topic,
)
from services.funnel.backfill import is_backfill
from services.funnel.canary import CanaryGuard
from services.funnel.config import FunnelServiceConfig
from services.funnel.metrics import FaustMonitor, FunnelMetrics
from services.funnel.predictor import CLUSTER_HEADER, Forecast, PredictionDispatcher, Predictor
from services.funnel.processor import (
    FunnelProcessor,
    Output,
    Result,
    merge_store_events,
    store_topic_name,
)
from services.funnel.query import define_query_views
from services.funnel.sequence import LogReader, LogRecord, Sequence
from services.funnel.stockout import StoreCache, StoreProcessor
from services.funnel.tables import DecodedCache, SentTable, StateCache

__all__ = ["FunnelService", "ensure_topics", "internal_topics"]

log = logging.getLogger(__name__)


def internal_topics(config: FunnelServiceConfig) -> tuple[Topic, ...]:
    """The worker's own topics besides its tables' changelogs (which Faust creates)."""
    return (
        Topic(f"{config.app_id}-ticks", Message, "none (partition = pos.transactions partition)",
              POS_TRANSACTIONS.partitions),
        Topic(store_topic_name(config), Message, "store_id", STOCKOUT_ALERTS.partitions),
    )


def ensure_topics(service: "FunnelService", timeout_s: float = 60.0) -> list[str]:
    """Create every topic the worker reads or writes that does not exist yet, before Faust
    starts: the LENS topics, the worker's internal topics and its tables' changelogs
    (compacted). Faust would create the changelogs itself, but a worker whose consumer fetched
    metadata while a changelog was still being created sees it with 0 partitions and crashes
    its agent on the first table write (PartitionsMismatch) until metadata refreshes. Returns
    the names created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    from lens.errors import RuntimeDependencyError

    config = service.config
    wanted = [(t.name, t.partitions, {}) for t in (*ALL_TOPICS, *internal_topics(config))]
    wanted += [
        (table.changelog_topic.get_topic_name(), table.partitions, {"cleanup.policy": "compact"})
        for table in (service.states, service.partition_records, service.stores)
    ]
    admin = AdminClient(config.kafka.client_config({"log_level": 0}))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [
        NewTopic(name, num_partitions=n, replication_factor=-1, config=topic_config)
        for name, n, topic_config in wanted if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeDependencyError(f"could not create topic {name}: {exc}") from exc
    return created


_STORE_BATCH_PAUSE_S = 0.001  # see the stores agent
# The tick that makes a batch of a partition for its landed predictions. Unlike the timer's, it
# does not sweep: the sweep closes idle baskets against the partition's watermark, and a
# partition whose customers' event times differ by more than the inactivity timeout (a replay
# beside a live stream) would see its baskets closed between two lines far more often.
_LANDED_TICK = b"landed"


class _Landed(NamedTuple):
    """A prediction on the broker that the funnel agent has yet to apply: its record."""

    offset: int
    key: bytes
    value: bytes
    cluster: int | None

# what ``LogReader.read`` found of a batch's holes: (topic, partition) -> offset -> record
Holes = dict[tuple[str, int], dict[int, LogRecord]]


def _now_us() -> int:
    return time.time_ns() // 1000


def _enter(event: Any) -> None:
    """Make ``event`` Faust's current event in this task: its tables read and write the current
    event's partition, and the batch that ``take_events`` hands the agent leaves none set."""
    _current_event.set(weakref.ref(event))


class _Topic(faust.Topic):
    """The app's topics (outputs, ticks, table changelogs): a record sent goes to the started
    producer directly. Faust's ``Topic`` asks ``app.maybe_start_producer`` for every record,
    whose stampede guard yields to the event loop three times even once the producer runs:
    three loop turns per record sent."""

    async def _get_producer(self) -> Any:
        app = self.app
        producer = app.producer
        if producer.started and not app.in_transaction:
            return producer
        return await super()._get_producer()


def install_fast_delivery(consumer: Any) -> None:
    """Hand each fetched record to its streams with one task instead of four. Faust's consumer
    delivers a record with ``wait_first(callback(message), suspend_flow.wait())``, which makes
    a task of each, plus two more for its own stop and crash events, and cancels the three
    losers: most of the event loop's work per record received. Here the delivery is the one
    task, and a future put among the waiters of the three events ends the wait as they would
    (a rebalance suspending the flow, a stop, a crash), leaving the delivery cancelled as
    before. Anything else goes to ``wait_first`` itself."""
    if getattr(consumer, "_lens_fast_delivery", False):
        return
    wait_first = consumer.wait_first

    async def deliver(*coros: Any, timeout: Any = None) -> WaitResults:
        events = (consumer.suspend_flow, consumer._stopped, consumer._crashed)
        if (len(coros) != 2 or timeout is not None
                or getattr(coros[1], "__qualname__", None) != "Event.wait"
                or any(event.is_set() for event in events)):
            return await wait_first(*coros, timeout=timeout)
        delivery, suspended = coros
        suspended.close()  # its event is among those watched below
        loop = asyncio.get_running_loop()
        task = loop.create_task(delivery)
        woken = loop.create_future()
        task.add_done_callback(lambda _: woken.done() or woken.set_result(None))
        for event in events:
            event._waiters.append(woken)
        try:
            await woken
        finally:
            for event in events:
                event._waiters.remove(woken)
            if not task.done():
                task.cancel()
        if not task.done():  # an event ended the wait
            return WaitResults([], [], True)
        return WaitResults([delivery], [task.result()], False)  # raises what the delivery raised

    consumer.wait_first = deliver
    consumer._lens_fast_delivery = True


class _FunnelTables:
    """``FunnelTables`` over the two customer-side Faust tables (values are bytes)."""

    def __init__(self, states: Any, partitions: Any) -> None:
        self.states = states
        self.partitions = partitions

    def get_state(self, customer_id: str) -> FunnelState | None:
        data = self.states.get(customer_id)
        return FunnelState.from_bytes(data) if data else None

    def put_state(self, state: FunnelState) -> None:
        self.states[state.customer_id] = state.to_bytes()

    def get_meta(self, partition: int) -> bytes | None:
        return self.partitions.get(f"p{partition}")

    def put_meta(self, partition: int, data: bytes) -> None:
        self.partitions[f"p{partition}"] = data


class _StoreTables:
    def __init__(self, stores: Any) -> None:
        self.stores = stores

    def get_store(self, store_id: str) -> bytes | None:
        return self.stores.get(store_id)

    def put_store(self, store_id: str, data: bytes) -> None:
        self.stores[store_id] = data

    def delete_store(self, store_id: str) -> None:
        self.stores.pop(store_id, None)


class FunnelService:
    """The Faust app with its topics, tables, agents, timer, web views and metrics.

    Args:
      config: the worker's configuration.
      registry: Prometheus registry for Faust's sensors, ``lens_funnel_*`` and the model client
        (a fresh one per app in tests).
      predictor: what answers predictions; None = a ``ModelPredictor`` over
        ``config.model_server`` (no predictions when that is None too).
    """

    def __init__(
        self,
        config: FunnelServiceConfig,
        *,
        registry: CollectorRegistry | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = FunnelMetrics(self.registry)
        predicting = predictor is not None or bool(config.model_server)
        # the canary share's router, fed by the processor's checks of each prediction
        self.canary_guard = (
            CanaryGuard(config.canary, config.model_version_label, self.metrics)
            if config.canary.share > 0 else None
        )
        self.processor = FunnelProcessor(
            config, self.metrics, predicting=predicting, canary_guard=self.canary_guard
        )
        self.store_processor = StoreProcessor(config, self.metrics)
        self._predictor = predictor
        self._dispatcher: PredictionDispatcher | None = None
        # partition -> predictions on the broker, not yet applied (_apply_landed)
        self._landed: dict[int, list[_Landed]] = {}
        if predictor is None and config.model_server:
            import serving.client  # noqa: F401 - TensorFlow's protos: import now, not mid-stream
        config.store_dir.mkdir(parents=True, exist_ok=True)
        self.app = app = faust.App(
            config.app_id,
            broker=config.broker_url,
            broker_credentials=config.kafka.faust_credentials(),
            store="rocksdb://",
            datadir=str(config.store_dir),
            web_bind=config.web_bind,
            web_host=config.web_bind,
            web_port=config.web_port,
            web_enabled=True,
            topic_partitions=POS_TRANSACTIONS.partitions,
            broker_session_timeout=config.session_timeout_s,
            producer_linger=config.producer_linger_s,
            Topic=_Topic,
            autodiscover=False,
            key_serializer="raw",
            value_serializer="raw",
        )
        setup_prometheus_sensors(app, registry=self.registry, name_prefix="lens_funnel_faust")
        # the same sensor over the metrics just registered, cheaper per record (FaustMonitor)
        app.monitor = FaustMonitor(metrics=app.monitor._metrics, registry=self.registry)

        def raw_topic(*names: str) -> Any:
            return app.topic(*names, key_type=bytes, value_type=bytes,
                             key_serializer="raw", value_serializer="raw")

        ticks_name, store_events_name = (t.name for t in internal_topics(config))
        self.customer_source = raw_topic(POS_TRANSACTIONS.name, ticks_name)
        self.ticks = raw_topic(ticks_name)
        self.resupplies_source = raw_topic(INVENTORY_RESUPPLIES.name)
        self.store_events = raw_topic(store_events_name)
        self.outputs = {t.name: raw_topic(t.name) for t in ALL_TOPICS}
        self.outputs[store_events_name] = self.store_events

        def raw_table(name: str, partitions: int, table_type: type = faust.Table) -> Any:
            # Values are raw bytes; Faust encodes a str-keyed table's keys as JSON (not the
            # app's raw serializer). What ``app.Table`` does, with the table's class chosen here.
            return app.tables.add(table_type(
                app, name=name, default=None, key_type=str, value_type=bytes,
                partitions=partitions, beacon=app.tables.beacon,
            ))

        # the funnel agent's tables: it waits for their changelog records (process_customer_batch)
        self.states = raw_table("funnel-state", POS_TRANSACTIONS.partitions, SentTable)
        self.partition_records = raw_table("funnel-partitions", POS_TRANSACTIONS.partitions,
                                           SentTable)
        # the store agent's table: it waits for its changelog records (process_store_batch)
        self.stores = raw_table("store-stockout", STOCKOUT_ALERTS.partitions, SentTable)
        self.tables = _FunnelTables(self.states, self.partition_records)
        self.state_cache = StateCache(self.tables, config.state_cache_size)
        self.sequence = Sequence()
        # reads what a hole in a source partition leaves out (and the committed offsets)
        self.log_reader = LogReader(config.kafka.client_config(), config.app_id)
        self.store_tables = _StoreTables(self.stores)
        self.store_cache = StoreCache(self.store_tables, config, config.store_cache_size)
        self._define_agents()
        self._define_views()

    # -- predictions ------------------------------------------------------------------------------

    def dispatcher(self) -> PredictionDispatcher | None:
        """Created on first use, inside the worker's event loop (gRPC channels bind to it)."""
        if self._dispatcher is None:
            predictor = self._predictor
            if predictor is None and self.config.model_server:
                from serving.client import ModelServerClient  # imports TensorFlow's protos

                from services.funnel.predictor import ModelPredictor

                client = ModelServerClient(
                    self.config.model_server, self.config.model_name,
                    timeout_s=self.config.predict_timeout_s, registry=self.registry,
                )
                clusters = None
                if self.config.cluster_model_path is not None:
                    from lens.anomaly import ClusterModel

                    clusters = ClusterModel.load(self.config.cluster_model_path)
                predictor = self._predictor = ModelPredictor(
                    client, model_label=self.config.model_version_label,
                    routing=self.canary_guard, cluster_model=clusters,
                )
            if predictor is None:
                return None
            self._dispatcher = PredictionDispatcher(
                predictor, self._publish_prediction, metrics=self.metrics,
                max_in_flight=self.config.max_in_flight, retry_s=self.config.predict_retry_s,
                # an answer after half the deadline says the server has more than it can do
                slow_after_s=self.config.predict_timeout_s / 2,
            )
        return self._dispatcher

    async def _publish_prediction(self, forecast: Forecast, partition: int) -> None:
        """Send the prediction and, once it is on the broker, hand it to the funnel agent (the
        state must not say predicted before the prediction is out)."""
        prediction = forecast.prediction
        headers = {} if forecast.cluster is None else {CLUSTER_HEADER: str(forecast.cluster).encode()}
        key, value = prediction.customer_id.encode(), encode(prediction)
        sent = await self.outputs[PREDICTIONS.name].send(
            key=key, value=value, partition=partition, headers=headers,
        )
        metadata = await sent
        landed = self._landed.setdefault(partition, [])
        landed.append(_Landed(metadata.offset, key, value, forecast.cluster))
        if len(landed) == 1:  # the agent may have nothing else of the partition to handle
            self.ticks.send_soon(key=None, value=_LANDED_TICK, partition=partition)

    # -- agents -----------------------------------------------------------------------------------

    def _send_soon(self, outputs: list[Output]) -> list[Any]:
        """Queue the outputs on the producer without a wait per record; returns their futures
        (each resolves once its record is on the broker)."""
        return [
            self.outputs[out.topic].send_soon(key=out.key, value=out.value,
                                              partition=out.partition)
            for out in outputs
        ]

    def handle_customer_record(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
        headers: Any = None,
    ) -> Result:
        """One record of the funnel agent (must run inside the agent, in the record's event:
        it changes tables). Customer states go through the state cache, which
        ``_write_batch`` writes back to the table."""
        now = _now_us()
        tables = self.state_cache.partition(partition)
        common = dict(partition=partition, now_us=now)
        if topic == POS_TRANSACTIONS.name:
            return self.processor.on_pos(
                tables, offset=offset, key=key, value=value, backfill=is_backfill(headers),
                **common,
            )
        if value == _LANDED_TICK:  # its batch applied the predictions (_apply_landed)
            return Result()
        dispatcher = self.dispatcher()
        want = dispatcher.due if dispatcher is not None else (lambda customer: False)
        return self.processor.on_sweep(tables, want_prediction=want, **common)

    def _handle_batch(
        self, events: list[Any], cache: DecodedCache[Any], apply: Callable[[Any], Result],
        read: Holes | None, write: bool,
    ) -> Result:
        """A batch of an agent over ``cache``: ``apply`` (one record: a Faust message or a
        ``LogRecord``) of every record in turn, in its event. With ``read`` (what
        ``_read_holes`` read for the batch) the records go in sequence (``_in_sequence``);
        without, they are applied as given. ``write``: write the changed values to the table at
        the end (``_write_batch``; else they stay in ``cache``, as ``process_*_batch`` write
        them once the outputs are out). ``predict`` holds (snapshot, partition) pairs."""
        handle = apply if read is None else self._in_sequence(apply, read)
        batch = Result()
        try:
            for event in events:
                message = event.message
                _enter(event)
                result = handle(message)
                batch.outputs += result.outputs
                batch.predict += [(state, message.partition) for state in result.predict]
        except BaseException:
            # half-applied changes must not outlive the batch: reload from the table
            cache.clear()
            raise
        if write:
            self._write_batch(events, cache)
        return batch

    @staticmethod
    def _write_batch(events: list[Any], cache: DecodedCache[Any]) -> None:
        """Write each value the batch changed once, in an event of its partition (a Faust table
        writes into the partition of the current event)."""
        last_event = {event.message.partition: event for event in events}
        try:
            for partition in cache.dirty_partitions():
                _enter(last_event[partition])
                cache.flush(partition)
        except BaseException:
            cache.clear()
            raise

    async def _outputs_then_state(
        self, events: list[Any], cache: DecodedCache[Any], outputs: list[Any], tables: list[Any]
    ) -> None:
        """Wait until the batch's ``outputs`` (``_send_soon`` futures) are on the broker, then
        write its state (``_write_batch``) and wait until the changelog records of ``tables``
        are on the broker too. In this order a crash leaves, at worst, outputs of a batch whose
        state was not written: its records are read again and send the same outputs again
        (same ids; subscribers dedupe). The other order could leave state that had seen a batch
        whose outputs never left, and a replay, recognised by that state, would not send them."""
        try:
            await asyncio.gather(*outputs)
        except BaseException:
            cache.clear()
            raise
        self._write_batch(events, cache)
        await asyncio.gather(*(sent for table in tables for sent in table.take_sent()))

    def _in_sequence(
        self, apply: Callable[[Any], Result], read: Holes
    ) -> Callable[[Any], Result]:
        """``apply`` (one record: a Faust message or a ``LogRecord``) wrapped so that each
        partition's records are applied in offset order (``Sequence``): before a record past a
        hole, the records of the hole, from ``read`` (``_read_holes``); a replay (a record before
        the expected offset) is applied as usual (see ``Sequence``)."""

        def handle(message: Any) -> Result:
            key = (message.topic, message.partition)
            expected = self.sequence.expected(key)
            records = [message]
            if expected is not None and message.offset > expected:
                if key not in read:
                    raise RuntimeError(f"{key}: offsets {expected}..{message.offset - 1} missing "
                                       "and not read (Sequence.missing)")
                found = [read[key][offset] for offset in range(expected, message.offset)
                         if offset in read[key]]
                log.warning("%s[%d]: offsets %d..%d did not reach the agent: %d read from the "
                            "broker, %d not in the log", message.topic, message.partition,
                            expected, message.offset - 1, len(found),
                            message.offset - expected - len(found))
                records = found + records
            result = Result()
            for record in records:
                self.sequence.advance(key, record.offset)
                done = apply(record)
                result.outputs += done.outputs
                result.predict += done.predict
            return result

        return handle

    def handle_customer_batch(
        self, events: list[Any], read: Holes | None = None, *, write: bool = True
    ) -> Result:
        """A batch of the funnel agent: the predictions landed for its partitions
        (``_apply_landed``), then ``_handle_batch`` over the state cache."""

        def apply(record: Any) -> Result:
            return self.handle_customer_record(
                record.topic, record.partition, record.offset, record.key, record.value,
                record.headers,
            )

        landed = self._apply_landed(events)
        batch = self._handle_batch(events, self.state_cache, apply, read, write)
        batch.outputs[:0] = landed.outputs
        return batch

    def _apply_landed(self, events: list[Any]) -> Result:
        """Apply the predictions on the broker for the batch's partitions to their customers'
        states (in the state cache, written with the batch), each partition's in the first event
        of it. They landed before the batch's records came: they go first, as a read-back
        would have. A batch that fails loses them with its changes: their customers stay
        pending and are predicted again."""
        first_event: dict[int, Any] = {}
        for event in events:
            first_event.setdefault(event.message.partition, event)
        result = Result()
        try:
            for partition, event in first_event.items():
                landed = self._landed.pop(partition, None)
                if not landed:
                    continue
                _enter(event)
                tables = self.state_cache.partition(partition)
                for prediction in landed:
                    result.outputs += self.processor.on_prediction(
                        tables, partition=partition, offset=prediction.offset,
                        key=prediction.key, value=prediction.value, now_us=_now_us(),
                        cluster=prediction.cluster,
                    ).outputs
        except BaseException:
            self.state_cache.clear()
            raise
        return result

    def handle_store_batch(
        self, events: list[Any], read: Holes | None = None, *, write: bool = True
    ) -> Result:
        """A batch of the store agent: ``_handle_batch`` over the store cache."""

        def apply(record: Any) -> Result:
            return self.store_processor.on_store_record(
                self.store_cache.partition(record.partition), partition=record.partition,
                offset=record.offset, key=record.key, value=record.value, now_us=_now_us(),
            )

        return self._handle_batch(events, self.store_cache, apply, read, write)

    async def process_store_batch(self, events: list[Any]) -> None:
        """The store agent's work on a batch, as ``process_customer_batch``: its records in
        sequence, its alerts on the broker, then its changelog records, and only then done
        (Faust may ack it)."""
        read = await self._read_holes(events)
        result = self.handle_store_batch(events, read, write=False)
        positions = self._positions(events)
        await self._outputs_then_state(events, self.store_cache, self._send_soon(result.outputs),
                                       [self.stores])
        self.sequence.durable(positions)

    async def process_resupply_batch(self, events: list[Any]) -> None:
        """``inventory.resupplies`` records validated and re-keyed onto the store topic
        (``StoreProcessor.on_resupply``), in sequence (a plan row that Faust loses around a
        rebalance is read from the broker) and done once the outputs are on the broker."""
        read = await self._read_holes(events)

        def apply(record: Any) -> Result:
            return self.store_processor.on_resupply(
                partition=record.partition, offset=record.offset, key=record.key,
                value=record.value, now_us=_now_us(),
            )

        handle = self._in_sequence(apply, read)
        outputs = [out for event in events for out in handle(event.message).outputs]
        positions = self._positions(events)
        await asyncio.gather(*self._send_soon(outputs))
        self.sequence.durable(positions)

    async def process_customer_batch(self, events: list[Any]) -> None:
        """The funnel agent's work on a batch. Faust acks the batch's records when this returns
        (``Stream.take_events``), so it returns only once the batch's changelog records and
        outputs are on the broker.

        Faust's own guard is not enough (issue 8): it commits acked offsets after
        ``producer.flush()``, which returns with records still queued when 0.1 s pass without
        one leaving its buffer (``ProducerBuffer.flush_atmost``: a loaded machine, a full batch
        of the Kafka client) and never waits for the record being handed to the client. A
        worker that then stopped or lost the partition could leave committed offsets of records
        whose state change never reached the changelog: the next owner would restore the state
        without them and read on after them."""
        read = await self._read_holes(events)
        result = self.handle_customer_batch(events, read, write=False)
        positions = self._positions(events)
        sent = self._send_soon(merge_store_events(result.outputs, store_topic_name(self.config)))
        if result.predict:
            dispatcher = self.dispatcher()
            if dispatcher is not None:
                for state, partition in result.predict:
                    dispatcher.submit(state, partition)
        await self._outputs_then_state(events, self.state_cache, sent,
                                       [self.states, self.partition_records])
        self.sequence.durable(positions)

    def _positions(self, events: list[Any]) -> dict[tuple[str, int], int]:
        """Where the batch leaves its partitions: what its writes make durable once they are on
        the broker (``Sequence.durable``)."""
        return self.sequence.positions({(e.message.topic, e.message.partition) for e in events})

    async def _read_holes(self, events: list[Any]) -> Holes:
        """What a batch (of either agent) needs read from the broker before it is applied: a
        partition's first record since its assignment starts at the group's committed offset,
        and the records that holes leave out (``Sequence``). Nothing is applied yet, so awaiting
        is safe."""
        keys = [((e.message.topic, e.message.partition), e.message.offset) for e in events]
        unknown = self.sequence.unknown(key for key, _ in keys)
        if unknown:
            earliest = self.app.conf.consumer_auto_offset_reset == "earliest"
            for key, offset in (await self.log_reader.starts(unknown, earliest)).items():
                self.sequence.start(key, offset)
        holes = self.sequence.missing(keys)
        if not holes:
            return {}
        return await self.log_reader.read(holes)

    def install_commit_guard(self, consumer: Any) -> None:
        """Bound the offsets Faust commits for the funnel and store agents' partitions to what
        the agent has applied and made durable (``Sequence.committable``): Faust's offset-gap
        bookkeeping counts offsets it passed over as acked, the record that arrived past them
        included, which the agent may not have applied yet. Other topics commit as Faust says."""
        if getattr(consumer, "_lens_commit_guard", False):
            return
        commit = consumer._commit
        topics = {*self.customer_source.topics, *self.store_events.topics,
                  *self.resupplies_source.topics}

        async def guarded_commit(offsets: Any) -> bool:
            bounded = {}
            for tp, offset in offsets.items():
                if tp.topic in topics:
                    offset = self.sequence.committable((tp.topic, tp.partition), offset)
                    if offset is None:
                        continue
                bounded[tp] = offset
            return await commit(bounded) if bounded else False

        consumer._commit = guarded_commit
        consumer._lens_commit_guard = True

    def _define_agents(self) -> None:
        app, service = self.app, self

        @app.agent(self.customer_source, name="funnel")
        async def funnel(stream):
            config = service.config
            async for events in stream.take_events(config.batch_max, config.batch_within_s):
                await service.process_customer_batch(events)

        @app.agent(self.resupplies_source, name="resupplies")
        async def resupplies(stream):
            config = service.config
            async for events in stream.take_events(config.batch_max, config.batch_within_s):
                await service.process_resupply_batch(events)

        @app.agent(self.store_events, name="stores")
        async def stores(stream):
            config = service.config
            async for events in stream.take_events(config.batch_max, config.batch_within_s):
                await service.process_store_batch(events)
                # A batch encodes each store it changed (tens of ms for a big one), and a backlog
                # of batches is read without a pause, starving the funnel agent and the sweep
                # timer. A turn of the loop is not enough: the funnel agent's stream moves one
                # record per turn. A millisecond lets it take what arrived meanwhile.
                await asyncio.sleep(_STORE_BATCH_PAUSE_S)

        @app.timer(interval=self.config.sweep_interval_s)
        async def sweep() -> None:
            """Processing-time trigger of the idle-basket sweep (see the module docstring)."""
            for tp in sorted(app.assignor.assigned_actives()):
                if tp.topic == POS_TRANSACTIONS.name:
                    await service.ticks.send(key=None, value=b"", partition=tp.partition)

        store_topic = store_topic_name(self.config)

        @app.on_partitions_revoked.connect
        async def on_revoked(app, revoked, **kwargs) -> None:
            service.forget({tp.partition for tp in revoked if tp.topic == POS_TRANSACTIONS.name})
            service.forget_stores({tp.partition for tp in revoked if tp.topic == store_topic})
            service.sequence.forget(service.resupplies_source.topics, {
                tp.partition for tp in revoked if tp.topic == INVENTORY_RESUPPLIES.name})

        @app.on_partitions_assigned.connect
        async def on_assigned(app, assigned, **kwargs) -> None:
            # Records of partitions that moved are reloaded from the table on first use.
            service.install_commit_guard(app.consumer)
            install_fast_delivery(app.consumer)
            mine = {tp.partition for tp in assigned if tp.topic == POS_TRANSACTIONS.name}
            service.forget(set(range(POS_TRANSACTIONS.partitions)) - mine)
            stores = {tp.partition for tp in assigned if tp.topic == store_topic}
            service.forget_stores(set(range(STOCKOUT_ALERTS.partitions)) - stores)
            plans = {tp.partition for tp in assigned if tp.topic == INVENTORY_RESUPPLIES.name}
            service.sequence.forget(service.resupplies_source.topics,
                                    set(range(INVENTORY_RESUPPLIES.partitions)) - plans)

        @app.on_before_shutdown.connect
        async def on_shutdown(app, **kwargs) -> None:
            service.log_reader.close()

        self.funnel_agent, self.resupplies_agent, self.stores_agent = funnel, resupplies, stores
        self.sweep_timer = sweep

    def forget(self, partitions: set[int]) -> None:
        """Customer partitions (of pos.transactions, and the co-partitioned lens.predictions and
        ticks) this worker no longer owns: drop what it keeps of them in memory (another worker
        writes their tables now; if they come back, they are read from the table)."""
        self.processor.forget(partitions)
        self.state_cache.forget(partitions)
        for partition in partitions:
            self._landed.pop(partition, None)
        self.sequence.forget(self.customer_source.topics, partitions)

    def forget_stores(self, partitions: set[int]) -> None:
        """Partitions of the store topic this worker no longer owns, as ``forget``: they are
        assigned apart from the customer partitions of the same number."""
        self.store_cache.forget(partitions)
        self.sequence.forget(self.store_events.topics, partitions)

    # -- web views --------------------------------------------------------------------------------

    def _define_views(self) -> None:
        app, service = self.app, self

        @app.page("/funnel/customers/{customer_id}/")
        async def customer(web, request, customer_id: str):
            state = service.tables.get_state(customer_id)
            if state is None:
                return web.json({"error": f"customer {customer_id!r} not on this worker"},
                                status=404)
            return web.json(state.to_dict())

        @app.page("/funnel/stats/")
        async def stats(web, request):
            metas = service.processor.metas
            return web.json({
                "partitions": sorted(metas),
                "open_baskets": sum(len(m.open) for m in metas.values()),
                "pending_predictions": sum(len(m.pending) for m in metas.values()),
                "watermarks_us": {str(p): m.watermark for p, m in sorted(metas.items())},
                # "uvloop" or "asyncio": LENS_FUNNEL_EVENT_LOOP took effect
                "event_loop": type(asyncio.get_running_loop()).__module__.partition(".")[0],
            })

        define_query_views(app, service)
