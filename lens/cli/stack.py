"""``lens stack up|down|status``: the local runtime (for now, the Kafka broker)."""

import argparse

from lens.settings import LensSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="start, stop or inspect the local Kafka broker",
        description="Manage the local runtime: a real Apache Kafka 4.1 broker in KRaft mode, "
        "resolved from Maven Central, bound to loopback, with data and logs under the run dir. "
        "With LENS_KAFKA_BOOTSTRAP set, `up` instead waits for that cluster and creates the "
        "LENS topics on it (idempotent), and `status` describes it.",
    )
    parser.add_argument("action", choices=("up", "down", "status"), help="what to do")
    parser.add_argument(
        "--kafka-port", type=int, default=None, help="client port (env LENS_KAFKA_PORT, 9092)"
    )
    parser.add_argument(
        "--kafka-controller-port",
        type=int,
        default=None,
        help="KRaft controller port (env LENS_KAFKA_CONTROLLER_PORT, 9093)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    if not settings.uses_local_kafka:
        return _run_external(args.action, settings)
    from services.kafka import cluster_info, create_topics
    from services.stack import LocalKafka

    broker = LocalKafka(settings)
    if args.action == "up":
        status = broker.start()
        created = create_topics(broker.connection)
        print(f"Kafka {status.version} is up at {status.bootstrap} (pid {status.pid}, log {status.log})")
        print(f"topics created: {', '.join(created) if created else 'none (all existed)'}")
    elif args.action == "down":
        print("Kafka stopped" if broker.stop() else "Kafka was not running")
    else:
        status = broker.status()
        if not status.running:
            print(f"Kafka is not running (would listen on {status.bootstrap})")
            return 1
        info = cluster_info(broker.connection)
        print(f"Kafka {status.version} running at {status.bootstrap} (pid {status.pid})")
        print(f"cluster {info.cluster_id}, brokers {list(info.broker_ids)}")
        _print_topics(info.topics)
    return 0


def _run_external(action: str, settings: LensSettings) -> int:
    """With LENS_KAFKA_BOOTSTRAP set there is no broker to start: `up` prepares the cluster."""
    from services.kafka import KafkaConnection, cluster_info, create_topics, wait_until_ready

    kafka = KafkaConnection.from_settings(settings)
    if action == "down":
        print(f"nothing to stop: Kafka at {kafka} is not managed by LENS")
        return 0
    wait_until_ready(kafka, timeout_s=60)
    if action == "up":
        created = create_topics(kafka)
        print(f"topics created on {kafka}: {', '.join(created) if created else 'none (all existed)'}")
    info = cluster_info(kafka)
    print(f"Kafka cluster {info.cluster_id} at {kafka}, brokers {list(info.broker_ids)}")
    _print_topics(info.topics)
    return 0


def _print_topics(topics: dict[str, int]) -> None:
    for name, partitions in topics.items():
        print(f"  {name:<24} {partitions} partitions")
