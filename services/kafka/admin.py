"""Kafka cluster administration through the AdminClient: readiness, topics, cluster facts."""

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from lens.errors import RuntimeDependencyError
from lens.topics import ALL_TOPICS, Topic
from services.kafka.connection import Kafka, as_connection

__all__ = ["ClusterInfo", "cluster_info", "create_topics", "wait_until_ready"]


def _admin(kafka: Kafka, extra: dict | None = None) -> AdminClient:
    # librdkafka logs every refused connection while a broker starts; the callers report readiness.
    return AdminClient(as_connection(kafka).client_config({"log_level": 0, **(extra or {})}))


def wait_until_ready(kafka: Kafka, timeout_s: float, is_alive=lambda: True) -> None:
    """Block until the cluster answers a metadata request, or raise RuntimeDependencyError.

    ``is_alive`` lets a caller that started the broker fail fast when the process died. Refused
    credentials are final: they raise at once instead of retrying until the timeout.
    """
    refused: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        # A failed SASL login reaches only this callback (served by poll); list_topics itself
        # reports a bare transport failure.
        if error.code() == KafkaError._AUTHENTICATION:
            refused.append(error)

    admin = _admin(kafka, {"error_cb": on_error})
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not is_alive():
            raise RuntimeDependencyError(f"the Kafka broker at {kafka} exited while starting")
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException as exc:
            last_error = exc
        admin.poll(0)
        if refused:
            raise RuntimeDependencyError(
                f"Kafka at {kafka} refused the credentials ({refused[0].str()}). Check "
                "LENS_KAFKA_SASL_USERNAME and LENS_KAFKA_SASL_PASSWORD (and "
                "LENS_KAFKA_SASL_MECHANISM, LENS_KAFKA_SECURITY_PROTOCOL)."
            )
        time.sleep(0.5)
    raise RuntimeDependencyError(
        f"Kafka at {kafka} did not answer within {timeout_s:.0f}s ({last_error}). "
        "Check the address (LENS_KAFKA_BOOTSTRAP), the security settings "
        "(LENS_KAFKA_SECURITY_PROTOCOL) or the broker log."
    )


def create_topics(
    kafka: Kafka, topics: Iterable[Topic] = ALL_TOPICS, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created (idempotent)."""
    admin = _admin(kafka)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [t for t in topics if t.name not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(t.name, num_partitions=t.partitions, replication_factor=-1) for t in wanted],
        operation_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeDependencyError(f"could not create topic {name}: {exc}") from exc
    return created


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    controller_id: int
    broker_ids: tuple[int, ...]
    topics: dict[str, int]  # topic name -> partition count


def cluster_info(kafka: Kafka, timeout_s: float = 10.0) -> ClusterInfo:
    admin = _admin(kafka)
    description = admin.describe_cluster(request_timeout=timeout_s).result(timeout=timeout_s)
    metadata = admin.list_topics(timeout=timeout_s)
    return ClusterInfo(
        cluster_id=description.cluster_id,
        controller_id=description.controller.id if description.controller else -1,
        broker_ids=tuple(sorted(node.id for node in description.nodes)),
        topics={
            name: len(topic.partitions)
            for name, topic in sorted(metadata.topics.items())
            if not name.startswith("__")
        },
    )
