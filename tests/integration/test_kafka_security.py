"""Kafka client security on a real broker whose client listener requires SASL/PLAIN.

The local broker runs with ``LENS_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`` and accepts exactly the
configured user. LENS's clients built from the same settings (admin, POS publisher, a consumer,
the Faust funnel worker) get through; wrong or missing credentials are refused with an error that
says so; the password shows up in no log.

Every wait is a poll loop with a deadline; nothing asserts on speed.
"""

import dataclasses
import os
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer
from pydantic import SecretStr

from lens import v1
from lens.errors import RuntimeDependencyError
from lens.settings import load_settings
from lens.topics import ALL_TOPICS, POS_TRANSACTIONS, SESSIONS
from services.kafka import KafkaConnection, create_topics, wait_until_ready
from services.pos import PosPublisher
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LENS_KAFKA_BOOTSTRAP")), reason="needs the local broker, with SASL"
)

USER = "lens-app"
# Quotes, a backslash and a dollar: the broker's JAAS config and every client must carry them.
PASSWORD = 'pa55-"quoted"\\back-$slash'
SECURITY_ENV = {
    "LENS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "LENS_KAFKA_SASL_USERNAME": USER,
    "LENS_KAFKA_SASL_PASSWORD": PASSWORD,
}
WORKER_START_TIMEOUT_S = 180.0  # a cold worker on a busy machine
RESULT_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    from services.stack import LocalKafka

    settings = load_settings(
        run_dir=tmp_path_factory.mktemp("kafka-sasl"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
    )
    broker = LocalKafka(settings)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def kafka(sasl_broker) -> KafkaConnection:
    connection = sasl_broker.connection
    create_topics(connection, ALL_TOPICS)
    return connection


def read_all(kafka: KafkaConnection, topic: str, want, timeout_s: float = RESULT_TIMEOUT_S):
    """Records of ``topic`` from the beginning until ``want(records)`` holds."""
    consumer = Consumer(kafka.client_config({
        "group.id": f"test-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }))
    consumer.subscribe([topic])
    records = []
    deadline = time.monotonic() + timeout_s
    try:
        while not want(records) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert not message.error(), message.error()
            records.append((message.key(), message.value()))
    finally:
        consumer.close()
    return records


def basket(transaction: str, customer: str) -> list[v1.PosEvent]:
    from google.protobuf.timestamp_pb2 import Timestamp

    at = Timestamp()
    at.GetCurrentTime()
    line = v1.TransactionLine(
        transaction_id=transaction, line_no=1, customer_id=customer, store_id="S1",
        product_id="milk", timestamp=at, quantity=1.0, amount=1.5,
    )
    close = v1.BasketClosed(
        transaction_id=transaction, customer_id=customer, store_id="S1", timestamp=at, line_count=1
    )
    return [v1.PosEvent(line=line), v1.PosEvent(basket_closed=close)]


def test_the_broker_listener_requires_sasl(sasl_broker):
    rendered = sasl_broker.config_path.read_text()
    assert f"listeners=SASL_PLAINTEXT://127.0.0.1:{sasl_broker.settings.kafka_port}," in rendered
    assert "sasl.enabled.mechanisms=PLAIN" in rendered
    assert sasl_broker.config_path.stat().st_mode & 0o077 == 0  # it holds the password


def test_clients_with_the_right_credentials_produce_and_consume(kafka):
    events = basket(f"T-{uuid.uuid4().hex[:8]}", "c-right")
    with PosPublisher(kafka) as publisher:
        for event in events:
            publisher.send(event)
    assert publisher.acknowledged == 2

    def has_both(records):
        return sum(v1.PosEvent.FromString(v) in events for _, v in records) == 2

    assert has_both(read_all(kafka, POS_TRANSACTIONS.name, has_both))


def test_a_wrong_password_is_refused_with_a_clear_error(kafka):
    wrong = dataclasses.replace(kafka, sasl_password=SecretStr("not-the-password"))
    with pytest.raises(RuntimeDependencyError, match="refused the credentials") as info:
        wait_until_ready(wrong, timeout_s=60)
    assert "LENS_KAFKA_SASL_PASSWORD" in str(info.value)
    assert "not-the-password" not in str(info.value)


def test_an_unknown_user_is_refused_with_a_clear_error(kafka):
    stranger = dataclasses.replace(kafka, sasl_username="mallory")
    with pytest.raises(RuntimeDependencyError, match="refused the credentials"):
        wait_until_ready(stranger, timeout_s=60)


def test_a_client_without_sasl_gets_no_answer(kafka):
    with pytest.raises(RuntimeDependencyError, match="did not answer"):
        wait_until_ready(kafka.bootstrap, timeout_s=10)


def test_the_funnel_worker_runs_over_sasl_and_never_logs_the_password(kafka, sasl_broker, tmp_path):
    """`lens worker funnel` configured only through LENS_* variables: Faust (aiokafka) and the
    worker's admin client authenticate, a basket becomes a session, and the password appears in
    neither the worker's nor the broker's log."""
    from tests.integration.processes import lens_env, worker_command

    env = lens_env(**SECURITY_ENV, LENS_KAFKA_BOOTSTRAP=kafka.bootstrap, LENS_RUN_DIR=str(tmp_path))
    log_path = tmp_path / "worker.log"
    app_id = f"lens-funnel-sasl-{uuid.uuid4().hex[:8]}"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*worker_command(), "--no-model", "--web-port", str(free_port()), "--app-id", app_id,
             "--loglevel", "debug"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while "Worker ready" not in log_path.read_text(errors="replace"):
            assert worker.poll() is None, f"worker exited:\n{log_path.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"worker not ready:\n{log_path.read_text()[-4000:]}"
            time.sleep(0.5)
        customer = f"c-{uuid.uuid4().hex[:8]}"
        with PosPublisher(kafka) as publisher:
            for event in basket(f"T-{uuid.uuid4().hex[:8]}", customer):
                publisher.send(event)

        def has_session(records):
            return any(key == customer.encode() for key, _ in records)

        sessions = read_all(kafka, SESSIONS.name, has_session)
        assert has_session(sessions), f"no session:\n{log_path.read_text()[-4000:]}"
    finally:
        worker.terminate()
        worker.wait(60)
    worker_log = log_path.read_text(errors="replace")
    assert f"Kafka {kafka.bootstrap}" in worker_log  # its start line: the log was captured
    assert PASSWORD not in worker_log
    assert PASSWORD not in sasl_broker.log_path.read_text(errors="replace")
