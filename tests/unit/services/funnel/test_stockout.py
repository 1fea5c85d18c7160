"""StoreProcessor: resupplies re-keyed or dead-lettered; demand vs plan -> StockoutAlert."""

from lens import v1
from lens.stockout import ContributionUpdate
from lens.topics import DEAD_LETTERS, STOCKOUT_ALERTS
from services.funnel.processor import encode_store_event, store_topic_name
from services.funnel.stockout import StoreProcessor
from tests.unit.services.funnel.conftest import NOW_US


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
    assert processor.on_store_event(tables, resupply.outputs[0].value).outputs == []

    def demand(customer, units):
        update = ContributionUpdate("S1", customer, {("milk", "2026-03-03"): units * 1_000_000},
                                    0, ("lens", 3, ""))
        return processor.on_store_event(tables, encode_store_event(update)).outputs

    assert demand("a", 2) == []  # 2 <= 3
    (out,) = demand("b", 2)  # 4 > 3: short by 1
    assert (out.topic, out.key) == (STOCKOUT_ALERTS.name, b"S1")
    alert = v1.StockoutAlert.FromString(out.value)
    assert (alert.product_id, alert.day, alert.shortfall) == ("milk", "2026-03-03", 1.0)
    assert alert.alert_id == "S1:milk:2026-03-03:1" and alert.model.version == 3
    assert demand("b", 2) == []  # same state: no second alert
    assert metrics.alerts.labels("stockout")._value.get() == 1
