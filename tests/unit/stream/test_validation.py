import datetime as dt

import pytest

from lens import v1
from lens.stream.event_time import to_timestamp
from lens.stream.validation import ValidationConfig, Validator, validate_pos_event, validate_resupply

from tests.unit.stream.events import DAY, T0, at, closed, line

R = v1.DeadLetterReason


def test_valid_line_and_close_pass():
    assert validate_pos_event(line("t1", 1, "p1")) is None
    assert validate_pos_event(closed("t1")) is None


def test_no_event_set():
    assert validate_pos_event(v1.PosEvent()) == (
        R.DEAD_LETTER_REASON_MISSING_FIELD,
        "PosEvent has no event set (neither line nor basket_closed)",
    )


@pytest.mark.parametrize("name", ["transaction_id", "customer_id", "product_id"])
def test_empty_ids(name):
    event = line("t1", 1, "p1")
    setattr(event.line, name, "")
    assert validate_pos_event(event) == (R.DEAD_LETTER_REASON_MISSING_FIELD, f"line {name} is empty")


def test_missing_timestamp_and_line_no():
    event = line("t1", 1, "p1")
    event.line.ClearField("timestamp")
    assert validate_pos_event(event) == (R.DEAD_LETTER_REASON_MISSING_FIELD, "line timestamp is missing")
    event = line("t1", 0, "p1")
    assert validate_pos_event(event)[0] == R.DEAD_LETTER_REASON_MISSING_FIELD
    event = closed("t1")
    event.basket_closed.ClearField("timestamp")
    assert validate_pos_event(event) == (R.DEAD_LETTER_REASON_MISSING_FIELD, "basket_closed timestamp is missing")


@pytest.mark.parametrize(
    ("quantity", "amount", "detail"),
    [
        (-3, 1.0, "quantity -3 must be > 0"),
        (0, 1.0, "quantity 0 must be > 0"),
        (20_000, 1.0, "quantity 20000 exceeds the maximum of 10000"),
        (float("nan"), 1.0, "quantity nan must be a finite number"),
        (2, -1.5, "amount -1.5 must be >= 0"),
    ],
)
def test_bad_quantities(quantity, amount, detail):
    event = line("t1", 1, "p1", quantity=quantity, amount=amount)
    assert validate_pos_event(event) == (R.DEAD_LETTER_REASON_INVALID_QUANTITY, detail)


def test_max_quantity_is_configurable():
    event = line("t1", 1, "p1", quantity=50)
    assert validate_pos_event(event, ValidationConfig(max_quantity=100)) is None
    assert validate_pos_event(event, ValidationConfig(max_quantity=10))[1] == "quantity 50 exceeds the maximum of 10"


def test_unknown_store():
    config = ValidationConfig(known_stores=frozenset({"s1"}))
    assert validate_pos_event(line("t1", 1, "p1", store="s1"), config) is None
    assert validate_pos_event(line("t1", 1, "p1", store="s9"), config) == (
        R.DEAD_LETTER_REASON_UNKNOWN_STORE,
        "store 's9' is not a known store",
    )
    assert validate_pos_event(line("t1", 1, "p1"), ValidationConfig()) is None  # no store list: all pass


def test_timestamp_before_2000():
    event = line("t1", 1, "p1")
    event.line.timestamp.CopyFrom(to_timestamp(0))
    assert validate_pos_event(event) == (
        R.DEAD_LETTER_REASON_INVALID_TIMESTAMP,
        "timestamp 1970-01-01T00:00:00Z is before 2000-01-01T00:00:00Z",
    )


def test_timestamp_too_far_in_the_future():
    event = line("t1", 1, "p1", minutes=36 * 60)  # T0 + 1.5 days
    assert validate_pos_event(event, reference_time=T0 + DAY // 2) is None  # 1 day ahead exactly: ok
    reason, detail = validate_pos_event(event, reference_time=T0)
    assert reason == R.DEAD_LETTER_REASON_INVALID_TIMESTAMP
    assert detail == (
        "timestamp 2024-03-05T22:00:00Z is 1.50 days ahead of the reference time "
        "2024-03-04T10:00:00Z; at most 1 day allowed"
    )
    assert validate_pos_event(event) is None  # no reference: no future check


def test_validator_reference_is_processing_time_or_the_latest_event_time():
    validator = Validator()
    assert validator.check(line("t1", 1, "p1", minutes=0)) is None
    # Replay (no `now`): 2 days after the latest event is rejected...
    assert validator.check(line("t1", 2, "p1", minutes=2 * 24 * 60))[0] == R.DEAD_LETTER_REASON_INVALID_TIMESTAMP
    # ...but it moves the reference, so a real gap costs one event, not the rest of the stream.
    assert validator.latest_event_time == at(2 * 24 * 60)
    assert validator.check(line("t1", 3, "p1", minutes=2 * 24 * 60 + 5)) is None
    # An event that fails another check does not move the reference.
    assert validator.check(line("t1", 4, "p1", minutes=9 * 24 * 60, quantity=-1))[0] == R.DEAD_LETTER_REASON_INVALID_QUANTITY
    assert validator.latest_event_time == at(2 * 24 * 60 + 5)
    # Live: processing time is the reference, whatever the events said.
    assert validator.check(line("t1", 5, "p1", minutes=10), now=at(0)) is None
    assert validator.check(line("t1", 6, "p1", minutes=2 * 24 * 60), now=at(0))[0] == R.DEAD_LETTER_REASON_INVALID_TIMESTAMP
    restored = Validator.from_dict(validator.to_dict())
    assert restored.latest_event_time == validator.latest_event_time


def test_resupply_checks():
    ok = v1.Resupply(store_id="s1", product_id="p1", day="2024-03-05", quantity=0)
    assert validate_resupply(ok) is None
    bad_day = v1.Resupply(store_id="s1", product_id="p1", day="2024-3-5", quantity=1)
    assert validate_resupply(bad_day) == (
        R.DEAD_LETTER_REASON_INVALID_TIMESTAMP,
        "day '2024-3-5' is not an ISO-8601 date (YYYY-MM-DD)",
    )
    negative = v1.Resupply(store_id="s1", product_id="p1", day="2024-03-05", quantity=-2)
    assert validate_resupply(negative) == (R.DEAD_LETTER_REASON_INVALID_QUANTITY, "quantity -2 must be >= 0")
    assert validate_resupply(v1.Resupply(product_id="p1", day="2024-03-05"))[1] == "resupply store_id is empty"
    config = ValidationConfig(known_stores=frozenset({"s1"}), earliest=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    other = v1.Resupply(store_id="s2", product_id="p1", day="2024-03-05", quantity=1)
    assert validate_resupply(other, config)[0] == R.DEAD_LETTER_REASON_UNKNOWN_STORE
