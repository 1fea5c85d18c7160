"""StoreProcessor: resupplies re-keyed or dead-lettered; demand vs plan -> StockoutAlert."""

from lens import v1
from lens.stockout import ContributionUpdate
from lens.topics import DEAD_LETTERS, SESSIONS, STOCKOUT_ALERTS
from services.funnel.processor import (
    Output,
    encode_store_event,
    merge_store_events,
    store_topic_name,
)
from services.funnel.stockout import (
    StoreCache,
    StoreProcessor,
    decode_store_events,
    encode_resupply_event,
)
from tests.unit.services.funnel.conftest import NOW_US, DictTables, store_event


def test_resupplies_are_rekeyed_by_store_or_dead_lettered(make_config, metrics):
    config = make_config()
    processor = StoreProcessor(config, metrics)
    good = v1.Resupply(store_id="S1", product_id="milk", day="2026-03-03", quantity=5)
    forwarded = processor.on_resupply(partition=1, offset=0, key=b"x", value=good.SerializeToString(),
                                      now_us=NOW_US)
    (out,) = forwarded.outputs
    assert (out.topic, out.key) == (store_topic_name(config), b"S1")
    bad = v1.Resupply(store_id="S1", product_id="milk", day="03/03/2026", quantity=5)
    rejected = processor.on_resupply(partition=1, offset=1, key=b"S1", value=bad.SerializeToString(),
                                     now_us=NOW_US)
    (letter,) = rejected.outputs
    assert letter.topic == DEAD_LETTERS.name
    dead = v1.DeadLetter.FromString(letter.value)
    assert dead.reason == v1.DeadLetterReason.DEAD_LETTER_REASON_INVALID_TIMESTAMP
    assert dead.source_topic == "inventory.resupplies" and dead.source_offset == 1


def test_demand_above_the_plan_alerts_once_per_state(make_config, tables, metrics):
    config = make_config()
    processor = StoreProcessor(config, metrics)
    resupply = processor.on_resupply(
        partition=0, offset=0, key=b"S1", now_us=NOW_US,
        value=v1.Resupply(store_id="S1", product_id="milk", day="2026-03-03", quantity=3)
        .SerializeToString(),
    )
    assert store_event(processor, tables, resupply.outputs[0].value).outputs == []

    def demand(customer, units, session=1):
        update = ContributionUpdate("S1", customer, {("milk", "2026-03-03"): units * 1_000_000},
                                    0, ("lens", 3, ""), session)
        return store_event(processor, tables, encode_store_event(update)).outputs

    assert demand("a", 2) == []  # 2 <= 3
    (out,) = demand("b", 2, session=7)  # 4 > 3: short by 1
    assert (out.topic, out.key) == (STOCKOUT_ALERTS.name, b"S1")
    alert = v1.StockoutAlert.FromString(out.value)
    assert (alert.product_id, alert.day, alert.shortfall) == ("milk", "2026-03-03", 1.0)
    assert alert.alert_id == "S1:milk:2026-03-03:1" and alert.model.version == 3
    # the prediction that raised it, through the store topic's encoding
    assert (alert.raised_by.customer_id, alert.raised_by.session_index) == ("b", 7)
    assert demand("b", 2) == []  # same state: no second alert
    assert metrics.alerts.labels("stockout")._value.get() == 1
    # a plan cut raises the next one: no prediction did
    cut = processor.on_resupply(
        partition=0, offset=1, key=b"S1", now_us=NOW_US,
        value=v1.Resupply(store_id="S1", product_id="milk", day="2026-03-03", quantity=1)
        .SerializeToString(),
    )
    (out,) = store_event(processor, tables, cut.outputs[0].value).outputs
    alert = v1.StockoutAlert.FromString(out.value)
    assert alert.shortfall == 3.0 and not alert.HasField("raised_by")


def test_the_plan_is_stored_one_day_per_key_and_expires_with_its_day(make_config, tables):
    import json

    from services.funnel.stockout import encode_resupply_event, load_store, plan_key

    config = make_config()
    processor = StoreProcessor(config)
    for product, day, units in [("milk", "2026-03-03", 3), ("eggs", "2026-03-03", 1),
                                ("milk", "2026-03-04", 9)]:
        store_event(processor, tables, encode_resupply_event(
            v1.Resupply(store_id="S1", product_id=product, day=day, quantity=units)))
    assert json.loads(tables.stores[plan_key("S1", "2026-03-03")]) == {
        "eggs": 1_000_000, "milk": 3_000_000}
    assert b"resupply" not in tables.stores["S1"]  # the head names the planned days only
    # a prediction for 03-03 meets that day's plan: 5 > 3
    as_of = 1_772_409_600_000_000  # 2026-03-02T00:00Z
    update = ContributionUpdate("S1", "a", {("milk", "2026-03-03"): 5_000_000}, as_of,
                                ("lens", 1, ""))
    (out,) = store_event(processor, tables, encode_store_event(update)).outputs
    assert v1.StockoutAlert.FromString(out.value).shortfall == 2.0
    record = load_store(tables, "S1", config)
    assert record.stockout.residual("milk", "2026-03-04") == 9.0
    # a newer prediction two days later expires 03-03 (before yesterday), plan key included
    later = ContributionUpdate("S1", "a", {}, as_of + 3 * 86_400_000_000, ("lens", 1, ""))
    store_event(processor, tables, encode_store_event(later))
    assert plan_key("S1", "2026-03-03") not in tables.stores
    assert plan_key("S1", "2026-03-04") in tables.stores


def test_a_malformed_store_record_is_dead_lettered_not_raised(make_config, tables, metrics):
    config = make_config()
    result = StoreProcessor(config, metrics).on_store_record(
        StoreCache(tables, config, 0).partition(2), partition=2, offset=7, key=b"S1",
        value=b'{"t": "demand"}', now_us=NOW_US)
    (letter,) = result.outputs
    assert letter.topic == DEAD_LETTERS.name
    dead = v1.DeadLetter.FromString(letter.value)
    assert (dead.source_topic, dead.source_offset) == (store_topic_name(config), 7)
    assert dead.original_value == b'{"t": "demand"}' and "malformed" in dead.detail
    assert tables.stores == {}


def test_stockout_alerts_carry_the_product_segment(make_config, tables, tmp_path):
    from lens.segments.segment_map import PRODUCT_MAP_FILE, SegmentMap

    SegmentMap(products={"milk": 4}).save(tmp_path)
    processor = StoreProcessor(make_config(product_segments_path=tmp_path / PRODUCT_MAP_FILE))
    for product in ("milk", "caviar"):
        store_event(processor, tables, encode_resupply_event(
            v1.Resupply(store_id="S1", product_id=product, day="2026-03-03", quantity=1)))
    alerts = {}
    for product in ("milk", "caviar"):
        update = ContributionUpdate("S1", f"c-{product}", {(product, "2026-03-03"): 5_000_000}, 0,
                                    ("lens", 1, ""))
        (out,) = store_event(processor, tables, encode_store_event(update)).outputs
        alerts[product] = v1.StockoutAlert.FromString(out.value)
    assert alerts["milk"].product_segment == 4
    assert not alerts["caviar"].HasField("product_segment")  # outside the segmentation


def _milk(customer, units, as_of, session=1, store="S1"):
    return ContributionUpdate(store, customer, {("milk", "2026-03-03"): units * 1_000_000}, as_of,
                              ("lens", 1, ""), session)


def test_a_batch_sends_each_store_its_demand_updates_in_one_record(make_config):
    topic = store_topic_name(make_config())
    a, b, c = _milk("a", 1, 10), _milk("b", 2, 10, store="S2"), _milk("c", 3, 20)
    session = Output(SESSIONS.name, b"a", b"a session")
    merged = merge_store_events([
        Output(topic, b"S1", encode_store_event(a)), session,
        Output(topic, b"S2", encode_store_event(b)), Output(topic, b"S1", encode_store_event(c)),
    ], topic)
    assert merged[0] is session
    assert [(out.topic, out.key) for out in merged[1:]] == [(topic, b"S1"), (topic, b"S2")]
    assert decode_store_events(merged[1].value) == [a, c]  # in the order they were sent
    assert merged[2].value == encode_store_event(b)  # a store's only update stays as it was


def test_a_merged_record_does_what_its_updates_do_one_by_one(make_config):
    config = make_config()
    topic = store_topic_name(config)
    plan = encode_resupply_event(
        v1.Resupply(store_id="S1", product_id="milk", day="2026-03-03", quantity=3))
    updates = [_milk("a", 2, 10), _milk("b", 2, 20, session=4), _milk("a", 0, 30, session=2),
               _milk("a", 5, 5)]  # the last one older than what "a" sent before: ignored
    one_by_one, together = DictTables(), DictTables()
    alone, batched = StoreProcessor(config), StoreProcessor(config)
    store_event(alone, one_by_one, plan)
    store_event(batched, together, plan)
    alerts = [out for update in updates
              for out in store_event(alone, one_by_one, encode_store_event(update)).outputs]
    (record,) = merge_store_events(
        [Output(topic, b"S1", encode_store_event(update)) for update in updates], topic)
    assert alerts  # b's 2 on top of a's 2 is short of the plan's 3
    assert store_event(batched, together, record.value).outputs == alerts
    assert together.stores == one_by_one.stores


def test_a_merged_record_with_a_malformed_update_is_dead_lettered_whole(make_config, tables):
    config = make_config()
    value = (b'{"t":"demands","events":[' + encode_store_event(_milk("a", 9, 10))
             + b',{"t":"demand"}]}')
    result = StoreProcessor(config).on_store_record(
        StoreCache(tables, config, 0).partition(2), partition=2, offset=3, key=b"S1",
        value=value, now_us=NOW_US)
    (letter,) = result.outputs
    assert letter.topic == DEAD_LETTERS.name
    assert v1.DeadLetter.FromString(letter.value).original_value == value
    assert tables.stores == {}  # its good update was not applied either
