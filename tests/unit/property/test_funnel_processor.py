"""The funnel worker's processors (no Kafka) on streams mixing plausible events with garbage:
random and mutated bytes, extreme fields and timestamps, unknown stores and products, resends.

For every record: no exception; exactly one outcome; a dead-lettered record yields exactly one
``DeadLetter`` with a reason, a detail and the original key and bytes; the outcome counters
reconcile (in = processed + dead-lettered + duplicates); every processed line ends up in a
session once the stream goes quiet; every output decodes as its topic's type.
"""

import collections
import dataclasses
import datetime as dt
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from lens import v1
from lens.anomaly import AnomalyConfig
from lens.codec import decode
from lens.errors import DataError
from lens.settings import LensSettings
from lens.stream import SessionizerConfig, ValidationConfig, validate_prediction
from lens.topics import ALL_TOPICS, DEAD_LETTERS, INVENTORY_RESUPPLIES, POS_TRANSACTIONS, SESSIONS
from services.funnel import FunnelMetrics, FunnelServiceConfig
from services.funnel.processor import FunnelProcessor, store_topic_name
from services.funnel.stockout import StoreProcessor, decode_store_events
from tests.unit.property.strategies import (
    POS_EVENTS,
    PREDICTIONS,
    RESUPPLIES,
    plausible_pos_events,
    wire_bytes,
)
from tests.unit.services.funnel.conftest import NOW_US, DictTables, closed, line, store_event

REASONS = set(v1.DeadLetterReason.values()) - {v1.DeadLetterReason.DEAD_LETTER_REASON_UNSPECIFIED}
VALUE_TYPES = {t.name: t.value_type for t in ALL_TOPICS}
OUTCOMES = ("processed", "dead_lettered", "duplicate")
DAY_US = 86_400 * 1_000_000


@pytest.fixture(scope="module")
def config() -> FunnelServiceConfig:
    """Test-sized windows; S1 and S2 are the known stores."""
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("LENS_")]:
            env.delenv(name)
        settings = LensSettings(kafka_bootstrap="127.0.0.1:9", funnel_quiet_after_s=10.0)
    return dataclasses.replace(
        FunnelServiceConfig.from_settings(settings),
        sessionizer=SessionizerConfig(inactivity_timeout=dt.timedelta(minutes=30)),
        anomaly=AnomalyConfig(min_history=2, window=10, threshold=3.5),
        validation=ValidationConfig(known_stores=frozenset({"S1", "S2"})),
    )


@st.composite
def pos_streams(draw) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) records: plausible events, extreme ones, garbage, and resends of earlier ones."""
    value = st.one_of(
        plausible_pos_events().map(lambda e: e.SerializeToString()),
        POS_EVENTS.map(lambda e: e.SerializeToString()),
        wire_bytes(plausible_pos_events()),
        st.none(),
    )
    records = draw(st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=8)), value),
                            max_size=30))
    resent = draw(st.lists(st.integers(0, max(len(records) - 1, 0)), max_size=5)) if records else []
    return records + [records[i] for i in resent]


def assert_outputs_decode(result) -> None:
    for out in result.outputs:
        if out.topic in VALUE_TYPES:
            VALUE_TYPES[out.topic].FromString(out.value)
        else:
            decode_store_events(out.value)


def check_dead_letters(result, *, topic: str, offset: int, key, value) -> None:
    letters = [v1.DeadLetter.FromString(o.value) for o in result.outputs if o.topic == DEAD_LETTERS.name]
    assert len(letters) == (result.outcome == "dead_lettered")
    for letter in letters:
        assert letter.reason in REASONS and letter.detail
        assert (letter.source_topic, letter.source_offset) == (topic, offset)
        assert (letter.original_key, letter.original_value) == (key or b"", value or b"")


def counter(metric, *labels) -> float:
    return metric.labels(*labels)._value.get()


@given(records=pos_streams())
def test_pos_records_reconcile_and_every_processed_line_reaches_a_session(config, records):
    tables, metrics = DictTables(), FunnelMetrics(CollectorRegistry())
    processor = FunnelProcessor(config, metrics)
    results, processed_lines = [], collections.Counter()
    for offset, (key, value) in enumerate(records):
        result = processor.on_pos(tables, partition=0, offset=offset, key=key, value=value,
                                  now_us=NOW_US)
        assert result.outcome in OUTCOMES
        check_dead_letters(result, topic=POS_TRANSACTIONS.name, offset=offset, key=key, value=value)
        assert_outputs_decode(result)
        if result.outcome == "processed" and v1.PosEvent.FromString(value).HasField("line"):
            line = v1.PosEvent.FromString(value).line
            processed_lines[(line.customer_id, line.product_id)] += line.quantity
        results.append(result)

    outcomes = collections.Counter(r.outcome for r in results)
    assert sum(outcomes.values()) == len(records)
    assert {o: counter(metrics.records, o) for o in OUTCOMES} == {o: outcomes[o] for o in OUTCOMES}
    letters = sum(o.topic == DEAD_LETTERS.name for r in results for o in r.outputs)
    by_reason = sum(
        counter(metrics.dead_letters, POS_TRANSACTIONS.name,
                v1.DeadLetterReason.Name(reason).removeprefix("DEAD_LETTER_REASON_").lower())
        for reason in REASONS
    )
    assert letters == by_reason == outcomes["dead_lettered"]

    # Quiet for ten days: every open basket closes, and each processed line is in a session.
    swept = processor.on_sweep(tables, partition=0, now_us=NOW_US + 10 * DAY_US)
    assert_outputs_decode(swept)
    assert processor.metas[0].open == set()
    in_sessions = collections.Counter()
    for out in [o for r in [*results, swept] for o in r.outputs if o.topic == SESSIONS.name]:
        session = v1.Session.FromString(out.value)
        for item in session.items:
            in_sessions[(session.customer_id, item.product_id)] += item.quantity
    assert in_sessions.keys() == processed_lines.keys()
    for cell, quantity in processed_lines.items():
        assert in_sessions[cell] == pytest.approx(quantity)


def feed_predictions(config, records, predictions) -> None:
    """Predictions after a POS stream, their demand updates on to the store side."""
    tables = DictTables()
    processor = FunnelProcessor(config)
    stores = StoreProcessor(config)
    # Every customer the predictions name has a closed session, so the predictions land.
    known = [(c.encode(), v) for c in ("c1", "c2", "c3")
             for v in (line(f"{c}-T0", 1, c, "milk", -7200), closed(f"{c}-T0", c, -7100))]
    for offset, (key, value) in enumerate(known + records):
        processor.on_pos(tables, partition=0, offset=offset, key=key, value=value, now_us=NOW_US)
    for offset, value in enumerate(predictions):
        result = processor.on_prediction(tables, partition=0, offset=offset, key=b"c1",
                                         value=value, now_us=NOW_US)
        assert_outputs_decode(result)
        if not is_valid_prediction(value):
            assert [out.topic for out in result.outputs] == [DEAD_LETTERS.name]
        for out in result.outputs:
            if out.topic == store_topic_name(config):
                assert_outputs_decode(store_event(stores, tables, out.value))


def is_valid_prediction(value: bytes) -> bool:
    try:
        return validate_prediction(decode(v1.Prediction, value)) is None
    except DataError:
        return False


@given(records=pos_streams(), predictions=st.lists(wire_bytes(PREDICTIONS), max_size=6))
def test_valid_predictions_of_any_content_update_state_and_store_demand(config, records, predictions):
    feed_predictions(config, records, [p for p in predictions if is_valid_prediction(p)])


@given(records=pos_streams(), predictions=st.lists(wire_bytes(PREDICTIONS), max_size=6))
def test_any_prediction_bytes_update_state_or_are_dead_lettered(config, records, predictions):
    """The worker applies only its own predictions, but a broken model can make anything of
    them."""
    feed_predictions(config, records, predictions)


@given(values=st.lists(wire_bytes(RESUPPLIES), max_size=12))
def test_resupplies_reconcile_and_valid_ones_reach_the_store_tables(config, values):
    tables, metrics = DictTables(), FunnelMetrics(CollectorRegistry())
    stores = StoreProcessor(config, metrics)
    outcomes = collections.Counter()
    for offset, value in enumerate(values):
        result = stores.on_resupply(partition=1, offset=offset, key=b"S1", value=value,
                                    now_us=NOW_US)
        assert result.outcome in ("processed", "dead_lettered")
        outcomes[result.outcome] += 1
        check_dead_letters(result, topic=INVENTORY_RESUPPLIES.name, offset=offset, key=b"S1",
                           value=value)
        for out in result.outputs:
            if out.topic == store_topic_name(config):
                assert_outputs_decode(store_event(stores, tables, out.value))
    assert {o: counter(metrics.resupplies, o) for o in outcomes} == dict(outcomes)
    assert sum(outcomes.values()) == len(values)


def test_a_huge_basket_of_unknown_products_becomes_one_session(config):
    """500 lines of products no model has seen, each at the largest valid quantity, then the
    close: every line is processed and lands in the one session, nothing is dead-lettered."""
    tables, metrics = DictTables(), FunnelMetrics(CollectorRegistry())
    processor = FunnelProcessor(config, metrics)
    lines = [line("T-huge", i, "c1", f"unseen-{i:04d}", i / 100, quantity=10_000)
             for i in range(1, 501)]
    records = [*lines, closed("T-huge", "c1", 10, line_count=500)]
    results = [processor.on_pos(tables, partition=0, offset=offset, key=b"c1", value=value,
                                now_us=NOW_US) for offset, value in enumerate(records)]
    assert {r.outcome for r in results} == {"processed"}
    (session,) = [v1.Session.FromString(o.value) for r in results for o in r.outputs
                  if o.topic == SESSIONS.name]
    assert len(session.items) == 500
    assert {i.quantity for i in session.items} == {10_000}
