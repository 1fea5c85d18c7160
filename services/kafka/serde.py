"""LENS events on the wire, for both Kafka client libraries the services use."""

from typing import Any

from confluent_kafka.serialization import Deserializer, SerializationContext, Serializer
from faust.serializers.codecs import Codec
from google.protobuf.message import Message

from lens.codec import decode, encode

__all__ = ["FaustProtobufCodec", "ProtobufDeserializer", "ProtobufSerializer"]


class FaustProtobufCodec(Codec):
    """Faust codec for one message type: ``app.topic(name, value_serializer=FaustProtobufCodec(T))``."""

    def __init__(self, message_type: type[Message], **kwargs: Any) -> None:
        super().__init__(message_type=message_type, **kwargs)
        self.message_type = message_type

    def _dumps(self, obj: Message) -> bytes:
        return encode(obj)

    def _loads(self, s: bytes) -> Message:
        return decode(self.message_type, s)


class ProtobufSerializer(Serializer):
    """confluent-kafka value serializer for LENS events (no schema registry: topics fix the type)."""

    def __call__(self, obj: Message | None, ctx: SerializationContext | None = None) -> bytes | None:
        return None if obj is None else encode(obj)


class ProtobufDeserializer(Deserializer):
    """confluent-kafka value deserializer for one message type; raises DataError on bad bytes."""

    def __init__(self, message_type: type[Message]) -> None:
        self.message_type = message_type

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Message:
        return decode(self.message_type, value)
