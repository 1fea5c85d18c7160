"""Event schemas follow the house rules: documented fields, 0 = unspecified, topics defined once."""

import re
from pathlib import Path

import pytest

from lens import v1
from lens.topics import ALL_TOPICS, topic_by_name

PROTO_DIR = Path(__file__).resolve().parents[2] / "protos" / "lens" / "v1"
PROTOS = sorted(PROTO_DIR.glob("*.proto"))
FIELD = re.compile(r"^\s*(repeated\s+)?[\w.]+\s+\w+\s*=\s*\d+;")
ENUM_VALUE = re.compile(r"^\s*(\w+)\s*=\s*(\d+);")


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_every_field_and_enum_value_has_a_comment(proto):
    lines = proto.read_text().splitlines()
    for number, line in enumerate(lines):
        if FIELD.match(line) or ENUM_VALUE.match(line):
            previous = lines[number - 1].strip()
            if ENUM_VALUE.match(line) and ENUM_VALUE.match(line).group(2) == "0":
                continue  # the UNSPECIFIED value speaks for itself
            assert previous.startswith("//"), f"{proto.name}:{number + 1} has no comment: {line}"


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_files_declare_package_lens_v1(proto):
    assert re.search(r"^package lens\.v1;$", proto.read_text(), re.M)


def test_enum_zero_values_are_unspecified():
    for enum in (v1.CloseReason, v1.DeadLetterReason):
        assert enum.Name(0).endswith("_UNSPECIFIED")


def test_topics_match_the_design_table():
    assert {t.name: t.value_type for t in ALL_TOPICS} == {
        "pos.transactions": v1.PosEvent,
        "inventory.resupplies": v1.Resupply,
        "lens.sessions": v1.Session,
        "lens.predictions": v1.Prediction,
        "lens.alerts.anomaly": v1.AnomalyAlert,
        "lens.alerts.stockout": v1.StockoutAlert,
        "lens.dlq": v1.DeadLetter,
    }
    assert all(t.partitions >= 1 for t in ALL_TOPICS)
    assert topic_by_name("lens.alerts.stockout").key == "store_id"


def test_unknown_topic_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="pos.transactions"):
        topic_by_name("pos.transaction")


def test_pos_event_carries_exactly_one_of_line_or_basket_closed():
    event = v1.PosEvent(line=v1.TransactionLine(transaction_id="T"))
    event.basket_closed.transaction_id = "T"
    assert event.WhichOneof("event") == "basket_closed"
    assert not event.HasField("line")
