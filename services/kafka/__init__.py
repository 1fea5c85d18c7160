"""Kafka clients for LENS: client configuration, topic administration and event (de)serializers."""

from services.kafka.admin import cluster_info, create_topics, wait_until_ready
from services.kafka.connection import Kafka, KafkaConnection, as_connection
from services.kafka.serde import FaustProtobufCodec, ProtobufDeserializer, ProtobufSerializer

__all__ = [
    "FaustProtobufCodec",
    "Kafka",
    "KafkaConnection",
    "ProtobufDeserializer",
    "ProtobufSerializer",
    "as_connection",
    "cluster_info",
    "create_topics",
    "wait_until_ready",
]
