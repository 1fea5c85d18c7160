"""Kafka cluster administration through the AdminClient: readiness, topics, cluster facts."""

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from lens.errors import RuntimeDependencyError
from lens.topics import ALL_TOPICS, Topic

__all__ = ["ClusterInfo", "cluster_info", "create_topics", "wait_until_ready"]


def _admin(bootstrap: str) -> AdminClient:
    # librdkafka logs every refused connection while a broker starts; the callers report readiness.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def wait_until_ready(bootstrap: str, timeout_s: float, is_alive=lambda: True) -> None:
    """Block until the cluster answers a metadata request, or raise RuntimeDependencyError.

    ``is_alive`` lets a caller that started the broker fail fast when the process died.
    """
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not is_alive():
            raise RuntimeDependencyError(f"the Kafka broker at {bootstrap} exited while starting")
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException as exc:
            last_error = exc
            time.sleep(0.5)
    raise RuntimeDependencyError(
        f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s ({last_error}). "
        "Check the address (LENS_KAFKA_BOOTSTRAP) or the broker log."
    )


def create_topics(
    bootstrap: str, topics: Iterable[Topic] = ALL_TOPICS, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created (idempotent)."""
    admin = _admin(bootstrap)
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


def cluster_info(bootstrap: str, timeout_s: float = 10.0) -> ClusterInfo:
    admin = _admin(bootstrap)
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
