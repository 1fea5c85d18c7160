import pytest

from lens import v1
from lens.codec import decode, encode
from lens.errors import DataError
from lens.topics import ALL_TOPICS


def test_transaction_line_round_trips_with_string_ids():
    line = v1.TransactionLine(
        transaction_id="T1", line_no=2, customer_id="00012", store_id="S1",
        product_id="4710199010372", quantity=1.5, amount=30.0,
    )
    line.timestamp.FromSeconds(1_700_000_000)
    event = v1.PosEvent(line=line)
    back = decode(v1.PosEvent, encode(event))
    assert back == event
    assert back.WhichOneof("event") == "line"
    assert back.line.customer_id == "00012"  # leading zeros survive


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_every_topic_value_type_round_trips_empty_message(topic):
    assert decode(topic.value_type, encode(topic.value_type())) == topic.value_type()


def test_garbage_bytes_raise_data_error_naming_the_type():
    with pytest.raises(DataError, match="not a valid lens.v1.PosEvent"):
        decode(v1.PosEvent, b"\xff\xff\xff\xff")


def test_missing_value_raises_data_error():
    with pytest.raises(DataError, match="empty record"):
        decode(v1.Session, None)


def test_unknown_fields_from_newer_producers_are_kept():
    # A newer schema adds field 99 (varint 7) to Resupply; older readers must not reject it.
    newer = encode(v1.Resupply(store_id="S1", product_id="P1", day="2026-01-05", quantity=3))
    newer += bytes([99 << 3 & 0x7F | 0x80, 99 >> 4, 7])
    resupply = decode(v1.Resupply, newer)
    assert resupply.store_id == "S1" and resupply.quantity == 3
    assert encode(resupply) == newer
