"""Real funnel-worker and model-server processes for the integration tests, and the POS
records they exchange: `Worker` (a `lens worker funnel` subprocess), `wait_for` (a bounded poll),
`Reader` (a topic read from the beginning), `SubscriberThread` (the alert subscriber on a
thread), `line`/`closed` (POS events), `topic_size`, and a stand-in SavedModel for `lens serve`.

Every wait is a poll loop with a deadline; nothing asserts on speed.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from lens import v1
from tests.conftest import free_port

START_TIMEOUT_S = 180.0  # a cold worker: imports, group join, table recovery, on a busy machine
RESULT_TIMEOUT_S = 120.0


def lens_env(**settings: str) -> dict[str, str]:
    """This process's environment without its LENS_ settings, plus ``settings``: a subprocess
    under test reads only what the test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENS_")}
    return {**env, **settings}


def worker_command() -> list[str]:
    """`lens worker funnel` through the CLI entry point; through the worker module's own
    entry point while lens.cli.main does not list the worker group yet."""
    from lens.cli import main as cli

    if any(getattr(g, "__name__", "") == "lens.cli.worker" for g in cli.COMMAND_GROUPS):
        return [sys.executable, "-m", "lens.cli.main", "worker", "funnel"]
    return [sys.executable, "-m", "lens.cli.worker", "funnel"]


class Worker:
    """A `lens worker funnel` subprocess with its log file and web port."""

    def __init__(self, bootstrap: str, run_dir: Path, *extra: str, app_id: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.app_id = app_id or f"lens-funnel-test-{uuid.uuid4().hex[:8]}"
        run_dir.mkdir(parents=True, exist_ok=True)
        # A restart in the same run dir (same tables) gets a log of its own: "Worker ready" in
        # the previous one must not count.
        starts = len(list(run_dir.glob("worker*.log")))
        self.log_path = run_dir / ("worker.log" if not starts else f"worker-{starts + 1}.log")
        environment = lens_env(LENS_KAFKA_BOOTSTRAP=bootstrap, LENS_RUN_DIR=str(run_dir), **(env or {}))
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*worker_command(), "--web-port", str(self.port), "--app-id", self.app_id, *extra],
            env=environment, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{label="v",...}': value}."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return samples

    def wait_ready(self) -> None:
        """Ready = /metrics answers and Faust logged that the worker is ready."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"worker exited early:\n{self.logs()}"
            # the whole log: a worker catching up on earlier tests' records can log enough
            # warnings to push the line out of the tail that logs() shows
            if "Worker ready" in self.log_path.read_text(errors="replace"):
                try:
                    self.metrics()
                    return
                except OSError:
                    pass
            time.sleep(0.5)
        pytest.fail(f"worker not ready within {START_TIMEOUT_S:.0f}s:\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL: no commit, no flush, no table close (a crash)."""
        self.process.kill()
        self.process.wait(timeout=30)
        self.log.close()

    def stop(self, timeout_s: float = 90.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log.close()
        return self.process.returncode


def wait_for(check: Callable[[], object], what: str, worker: Worker,
             timeout_s: float = RESULT_TIMEOUT_S) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        assert worker.process.poll() is None, f"worker exited while waiting for {what}:\n{worker.logs()}"
        time.sleep(0.5)
    pytest.fail(f"no {what} within {timeout_s:.0f}s:\n{worker.logs()}")


class Reader:
    """Reads a topic from the beginning into a list of (key, value bytes)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })
        self.consumer.subscribe([topic])

    def poll(self) -> list[tuple[bytes | None, bytes]]:
        while (message := self.consumer.poll(0.2)) is not None:
            if not message.error():
                self.records.append((message.key(), message.value()))
        return self.records

    def close(self) -> None:
        self.consumer.close()


class SubscriberThread:
    """An ``AlertSubscriber`` consuming in a background thread (fast retries), its delivered ids
    persisted under ``run_dir`` as the ``lens alerts`` command does."""

    def __init__(self, bootstrap: str, sinks: list, group: str, run_dir: Path, **config) -> None:
        from services.alerts import (
            AlertMetrics,
            AlertSubscriber,
            DeliveredIds,
            SubscriberConfig,
            state_path,
        )

        self.metrics = AlertMetrics()
        config = SubscriberConfig(group_id=group, backoff_s=0.05, backoff_max_s=0.2,
                                  poll_timeout_s=0.2, **config)
        self.subscriber = AlertSubscriber(
            bootstrap, sinks, config=config, metrics=self.metrics,
            delivered=DeliveredIds(state_path(run_dir, group), config.dedupe_capacity))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.subscriber.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def _stamp(t: dt.datetime):
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp()
    stamp.FromDatetime(t)
    return stamp


def line(tx, line_no, customer, product, t, quantity=1.0, store="S1") -> v1.PosEvent:
    return v1.PosEvent(line=v1.TransactionLine(
        transaction_id=tx, line_no=line_no, customer_id=customer, store_id=store,
        product_id=product, timestamp=_stamp(t), quantity=quantity, amount=2.5 * quantity,
    ))


def closed(tx, customer, t, line_count=0, store="S1") -> v1.PosEvent:
    return v1.PosEvent(basket_closed=v1.BasketClosed(
        transaction_id=tx, customer_id=customer, store_id=store, timestamp=_stamp(t),
        line_count=line_count,
    ))


def commit_at_end(bootstrap: str, group: str, topics: list) -> None:
    """Commit ``group``'s offsets at the current ends of ``topics`` (lens.topics specs): a new
    consumer group, a Faust app's included, then sees only what is produced from now on, not the
    other tests' records on the shared broker. Creates the topics that do not exist yet."""
    from services.kafka import KafkaConnection, create_topics

    create_topics(KafkaConnection(bootstrap=bootstrap), topics)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    try:
        while True:  # a fresh broker may still be electing leaders and a group coordinator
            try:
                offsets = [
                    TopicPartition(t.name, p, consumer.get_watermark_offsets(
                        TopicPartition(t.name, p), timeout=10)[1])
                    for t in topics for p in range(t.partitions)
                ]
                consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def own_records_app(bootstrap: str) -> str:
    """A fresh worker app id whose group starts at the current end of pos.transactions
    (``commit_at_end``), so that its worker reads only the records produced from now on. The
    other tests' baskets on the session's broker, stamped about now, would put the partitions'
    watermarks past a replay of older event times, and a sweep between a basket's lines would
    close it as idle: a session short of a line, the line dead-lettered as late."""
    from lens.topics import POS_TRANSACTIONS

    app_id = f"lens-funnel-test-{uuid.uuid4().hex[:8]}"
    commit_at_end(bootstrap, app_id, [POS_TRANSACTIONS])
    return app_id


def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-sizer"})
    try:
        total = 0
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


S, L = 4, 3  # the stand-in model's max_sessions and max_basket_items


def save_stand_in_model(base_path: Path, version: int = 1) -> None:
    """A SavedModel with the exported LENS signatures' names, inputs and outputs
    (lens.model.export), whose answer is easy to predict: the next basket is the last session's
    products, 2 units each, and the customer comes back in 1 day. (A trained LENS model takes
    minutes to train; this test is about the service around it.)"""
    import tensorflow as tf

    from lens.data.features import FEATURE_NAMES

    spec = [
        tf.TensorSpec([None, S, L], tf.string, name="session_items"),
        tf.TensorSpec([None, S, len(FEATURE_NAMES)], tf.float32, name="session_features"),
        tf.TensorSpec([None], tf.int32, name="session_count"),
        tf.TensorSpec([None], tf.string, name="customer_id"),
    ]

    def last_basket(session_items, session_count):
        index = tf.stack([tf.range(tf.shape(session_count)[0]), session_count - 1], axis=1)
        return tf.gather_nd(session_items, index)  # [B, L]

    class StandIn(tf.Module):
        @tf.function(input_signature=spec)
        def next_basket(self, session_items, session_features, session_count, customer_id):
            items = last_basket(session_items, session_count)
            present = tf.cast(items != "", tf.float32)
            batch = tf.shape(session_count)[0]
            return {
                "items": items,
                "item_scores": 0.9 * present,
                "quantities": 2.0 * present,
                "basket_size": tf.reduce_sum(tf.cast(items != "", tf.int32), axis=1),
                "ranking": items,
                "ranking_scores": 0.9 * present,
                "days_to_next": tf.ones([batch], tf.float32),
            }

        @tf.function(input_signature=spec)
        def time_to_next(self, session_items, session_features, session_count, customer_id):
            return {"days_to_next": tf.ones([tf.shape(session_count)[0]], tf.float32)}

    module = StandIn()
    staging = base_path / f".tmp-{version}"
    tf.saved_model.save(module, str(staging), signatures={
        "serving_default": module.next_basket, "next_basket": module.next_basket,
        "time_to_next": module.time_to_next,
    })
    staging.rename(base_path / str(version))


def serve_command() -> list[str]:
    from lens.cli import main as cli

    if any(getattr(g, "__name__", "") == "lens.cli.serve" for g in cli.COMMAND_GROUPS):
        return [sys.executable, "-m", "lens.cli.main", "serve"]
    return [sys.executable, "-m", "lens.cli.serve"]




class ModelServer:
    """A `lens serve` subprocess over one model base path, or over a model config file re-read
    every second (version labels), on a fixed port so that it can be stopped and started again
    where the worker expects it."""

    def __init__(self, base_path: Path | None, port: int, log_path: Path, *,
                 config_file: Path | None = None) -> None:
        self.base_path, self.port, self.log_path = base_path, port, log_path
        self.models = (
            [f"--model_config_file={config_file}", "--model_config_file_poll_wait_seconds=1"]
            if config_file else ["--model_name=lens", f"--model_base_path={base_path}"]
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*serve_command(), f"--port={self.port}", *self.models,
                 "--file_system_poll_wait_seconds=1"],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None
