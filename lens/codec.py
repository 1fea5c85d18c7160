"""Bytes <-> LENS events: the one place protobuf values are encoded and decoded.

The Faust codec and the confluent-kafka (de)serializers in ``services.kafka.serde`` both wrap these
two functions, so every producer and consumer agrees on the wire format.
"""

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from lens.errors import DataError

__all__ = ["decode", "encode"]

M = TypeVar("M", bound=Message)


def encode(message: Message) -> bytes:
    return message.SerializeToString()


def decode(message_type: type[M], data: bytes | None) -> M:
    """Parse ``data`` as ``message_type``.

    Unknown fields are kept, not rejected: producers on a newer schema may add fields
    (the schema rule: fields are only added).
    """
    if data is None:
        raise DataError(f"empty record: expected a {message_type.DESCRIPTOR.full_name}")
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise DataError(
            f"{len(data)} bytes are not a valid {message_type.DESCRIPTOR.full_name}: {exc}"
        ) from exc
    return message
