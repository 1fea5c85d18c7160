"""Decoders and validators on bad input: they return a value or raise their documented error
(``DataError``), never anything else, and validation never raises at all."""

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lens import v1
from lens.codec import decode, encode
from lens.errors import DataError
from lens.stream.validation import (
    ValidationConfig,
    Validator,
    validate_pos_event,
    validate_prediction,
    validate_resupply,
)
from lens.topics import ALL_TOPICS
from services.funnel.stockout import decode_store_events, encode_resupply_event
from services.kafka import FaustProtobufCodec, ProtobufDeserializer
from lens.stream.event_time import to_timestamp
from tests.unit.property.strategies import (
    INT64,
    POS_EVENTS,
    PREDICTIONS,
    RESUPPLIES,
    wire_bytes,
)
from tests.unit.services.funnel.conftest import T0_US

REASONS = set(v1.DeadLetterReason.values()) - {v1.DeadLetterReason.DEAD_LETTER_REASON_UNSPECIFIED}
STRICT = ValidationConfig(known_stores=frozenset({"S1"}))


def decodes_or_data_error(decoder, data):
    """The decoder's result, or None when it raised DataError (anything else propagates)."""
    try:
        return decoder(data)
    except DataError as exc:
        assert str(exc), "a DataError must say what is wrong"
        return None


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
@given(data=st.one_of(st.none(), st.binary(max_size=128)))
def test_every_topic_value_decodes_or_raises_data_error(topic, data):
    message = decodes_or_data_error(lambda d: decode(topic.value_type, d), data)
    if message is not None:
        # what decodes re-encodes to bytes that decode to the same message
        assert decode(topic.value_type, encode(message)) == message


@given(data=wire_bytes(POS_EVENTS))
def test_the_kafka_wrappers_decode_like_the_codec(data):
    expected = decodes_or_data_error(lambda d: decode(v1.PosEvent, d), data)
    assert decodes_or_data_error(ProtobufDeserializer(v1.PosEvent), data) == expected
    assert decodes_or_data_error(FaustProtobufCodec(v1.PosEvent).loads, data) == expected


def check_verdict(verdict) -> None:
    if verdict is not None:
        reason, detail = verdict
        assert reason in REASONS and isinstance(detail, str) and detail


@given(event=POS_EVENTS, reference=st.one_of(st.none(), INT64))
def test_pos_validation_gives_a_verdict_for_any_event(event, reference):
    for config in (ValidationConfig(), STRICT):
        check_verdict(validate_pos_event(event, config, reference_time=reference))


@given(events=st.lists(POS_EVENTS, max_size=8), now=st.one_of(st.none(), INT64))
def test_the_stateful_validator_gives_a_verdict_for_any_stream(events, now):
    validator = Validator(STRICT)
    for event in events:
        check_verdict(validator.check(event, now=now))
    restored = Validator.from_dict(validator.to_dict(), STRICT)
    assert restored.latest_event_time == validator.latest_event_time


@given(data=wire_bytes(POS_EVENTS))
def test_pos_bytes_either_fail_to_decode_or_get_a_verdict(data):
    event = decodes_or_data_error(lambda d: decode(v1.PosEvent, d), data)
    if event is not None:
        check_verdict(validate_pos_event(event, STRICT))


@given(resupply=RESUPPLIES)
def test_resupply_validation_gives_a_verdict_for_any_resupply(resupply):
    for config in (ValidationConfig(), STRICT):
        check_verdict(validate_resupply(resupply, config))


@given(prediction=PREDICTIONS)
def test_prediction_validation_gives_a_verdict_for_any_prediction(prediction):
    check_verdict(validate_prediction(prediction))


def good_prediction(**fields) -> v1.Prediction:
    prediction = v1.Prediction(
        customer_id="c1", as_of=to_timestamp(T0_US), days_to_next=2.0,
        basket=[v1.PredictedItem(product_id="milk", score=0.9, quantity=1.0)],
    )
    for name, value in fields.items():
        if name == "item":
            prediction.basket.append(value)
        elif name == "as_of":
            prediction.as_of.CopyFrom(value)
        else:
            setattr(prediction, name, value)
    return prediction


_REASON = v1.DeadLetterReason


@pytest.mark.parametrize(
    "fields, reason, detail",
    [
        ({}, None, None),
        ({"customer_id": ""}, _REASON.DEAD_LETTER_REASON_MISSING_FIELD, "customer_id is empty"),
        ({"days_to_next": float("nan")}, _REASON.DEAD_LETTER_REASON_INVALID_QUANTITY,
         "days_to_next nan"),
        ({"days_to_next": -1.0}, _REASON.DEAD_LETTER_REASON_INVALID_QUANTITY, "days_to_next -1"),
        ({"item": v1.PredictedItem(product_id="tea", score=float("inf"))},
         _REASON.DEAD_LETTER_REASON_INVALID_QUANTITY, "basket[1] ('tea') score inf"),
        ({"as_of": to_timestamp(253_402_300_800 * 1_000_000)},  # year 10000
         _REASON.DEAD_LETTER_REASON_INVALID_TIMESTAMP, "as_of 253402300800000000 us"),
    ],
)
def test_prediction_validation_names_what_is_wrong(fields, reason, detail):
    verdict = validate_prediction(good_prediction(**fields))
    if reason is None:
        assert verdict is None
    else:
        assert verdict[0] == reason and detail in verdict[1]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
STORE_EVENT_FIELDS = st.fixed_dictionaries(
    {"t": st.sampled_from(["demand", "resupply", "other"])},
    optional={
        "store": JSON, "product": JSON, "day": JSON, "quantity": JSON, "contributor": JSON,
        "cells": JSON, "as_of": JSON, "model": JSON,
    },
)


NUMBERS = st.one_of(
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 2**70]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
)
DEMAND_EVENTS = st.fixed_dictionaries({
    "t": st.just("demand"), "store": st.text(max_size=4), "contributor": st.text(max_size=4),
    "cells": st.lists(st.tuples(st.text(max_size=4), st.text(max_size=4), NUMBERS), max_size=3),
    "as_of": NUMBERS, "model": st.tuples(st.text(max_size=4), NUMBERS, st.text(max_size=4)),
})


@example(data=b"[" * 100_000)  # nesting deeper than the JSON parser's recursion
@given(data=st.one_of(
    st.none(),
    st.binary(max_size=64),
    JSON.map(lambda v: json.dumps(v).encode()),
    STORE_EVENT_FIELDS.map(lambda v: json.dumps(v).encode()),
    DEMAND_EVENTS.map(lambda v: json.dumps(v).encode()),  # Infinity, NaN, huge ints
    RESUPPLIES.map(encode_resupply_event),
))
def test_store_events_decode_or_raise_data_error(data):
    decodes_or_data_error(decode_store_events, data)
