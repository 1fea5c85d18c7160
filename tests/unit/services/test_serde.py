import pytest

from lens import v1
from lens.errors import DataError
from services.kafka import FaustProtobufCodec, ProtobufDeserializer, ProtobufSerializer


def resupply() -> v1.Resupply:
    return v1.Resupply(store_id="S1", product_id="P0042", day="2026-01-05", quantity=12)


def test_faust_codec_round_trips_and_clones_with_its_type():
    codec = FaustProtobufCodec(v1.Resupply)
    assert codec.loads(codec.dumps(resupply())) == resupply()
    # Faust combines codecs (e.g. "proto|gzip") by cloning; the clone must keep the type.
    clone = codec.clone()
    assert clone.loads(codec.dumps(resupply())) == resupply()


def test_confluent_serializer_and_deserializer_round_trip():
    data = ProtobufSerializer()(resupply())
    assert ProtobufDeserializer(v1.Resupply)(data) == resupply()
    assert ProtobufSerializer()(None) is None


def test_deserializer_rejects_garbage_with_data_error():
    with pytest.raises(DataError):
        ProtobufDeserializer(v1.PosEvent)(b"\x0a\xff")
