"""The local runtime stack behind ``lens stack``: processes LENS starts on this machine."""

from services.stack.kafka import LocalKafka, resolve_kafka_jars

__all__ = ["LocalKafka", "resolve_kafka_jars"]
