import datetime as dt

import pytest

from lens import v1
from lens.errors import ConfigError
from lens.stockout import (
    ContributionUpdate,
    DemandSource,
    StockoutConfig,
    StockoutMonitor,
    StoreStockout,
    contribution,
    contributor_key,
    oos_alerts,
)
from lens.stream.event_time import to_timestamp

AS_OF = int(dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
HOUR = 3_600_000_000
D2 = "2024-03-06"  # AS_OF date + 2 days


def pred(customer, store, basket, days=2.0, hours_later=0, version=1, session=1):
    """basket: [(product, quantity)] or [(product, quantity, score)]."""
    return v1.Prediction(
        prediction_id=f"{customer}:{session}",
        customer_id=customer,
        session_index=session,
        store_id=store,
        as_of=to_timestamp(AS_OF + hours_later * HOUR),
        basket=[v1.PredictedItem(product_id=p, quantity=q, score=(rest[0] if rest else 1.0)) for p, q, *rest in basket],
        days_to_next=days,
        model=v1.ModelRef(name="lens", version=version),
    )


def resupply(store, product, day, quantity):
    return v1.Resupply(store_id=store, product_id=product, day=day, quantity=quantity)


def test_contribution_day_rounding_horizon_and_default_quantity():
    config = StockoutConfig(n_days=7)
    # 2.4 days -> +2; 2.5 -> +3 (half up); quantity 0 -> default 1 unit; 7 days is outside the horizon.
    assert contribution(pred("c", "s", [("p1", 2)], days=2.4), config) == {("p1", D2): 2_000_000}
    assert contribution(pred("c", "s", [("p1", 2)], days=2.5), config) == {("p1", "2024-03-07"): 2_000_000}
    assert contribution(pred("c", "s", [("p1", 0)], days=0.2), config) == {("p1", "2024-03-04"): 1_000_000}
    assert contribution(pred("c", "s", [("p1", 2)], days=7.0), config) == {}
    # expected units: quantity x score
    assert contribution(pred("c", "s", [("p1", 2, 0.25)]), config) == {("p1", D2): 500_000}


def test_a_cell_alerts_once_its_expected_shortfall_exceeds_half_a_unit_by_default():
    monitor = StockoutMonitor()
    monitor.on_resupply(resupply("s1", "p1", D2, 2))
    # expected units: 2.5 against 2 is half a unit short, which rounds to no unit missing
    assert monitor.on_prediction(pred("c1", "s1", [("p1", 5, 0.5)])) == []
    assert monitor.store("s1").shortfalls() == []
    (alert,) = monitor.on_prediction(pred("c2", "s1", [("p1", 1, 0.1)]))
    assert (alert.product_id, alert.day, alert.shortfall) == ("p1", D2, pytest.approx(0.6))
    assert monitor.store("s1").shortfalls() == [("p1", D2, pytest.approx(0.6))]
    # the threshold is a setting: at 0 any fraction of a unit short alerts
    strict = StockoutMonitor(StockoutConfig(min_shortfall=0.0))
    strict.on_resupply(resupply("s1", "p1", D2, 2))
    assert len(strict.on_prediction(pred("c1", "s1", [("p1", 5, 0.5)]))) == 1


def test_newer_prediction_replaces_the_older_contribution():
    monitor = StockoutMonitor()
    monitor.on_prediction(pred("c1", "s1", [("p1", 3)]))
    monitor.on_prediction(pred("c2", "s1", [("p1", 2)]))
    assert monitor.store("s1").residual("p1", D2) == -5.0  # 3 + 2, no resupply
    monitor.on_prediction(pred("c1", "s1", [("p1", 1)], hours_later=1))
    assert monitor.store("s1").residual("p1", D2) == -3.0  # c1's 3 replaced by 1
    # c1 now expected at s2: its demand leaves s1.
    monitor.on_prediction(pred("c1", "s2", [("p1", 1)], hours_later=2))
    assert monitor.store("s1").residual("p1", D2) == -2.0
    assert monitor.store("s2").residual("p1", D2) == -1.0
    # An older prediction arriving late changes nothing.
    assert monitor.on_prediction(pred("c1", "s1", [("p1", 9)], hours_later=1)) == []
    assert monitor.store("s1").residual("p1", D2) == -2.0
    # A prediction beyond the horizon retracts c2's demand.
    monitor.on_prediction(pred("c2", "s1", [("p1", 2)], days=30, hours_later=3))
    assert monitor.store("s1").demand == {}


def test_shortfall_arithmetic_and_alert_fields():
    monitor = StockoutMonitor()
    assert monitor.on_resupply(resupply("s1", "p1", D2, 4)) == []  # no demand: R = 4 >= 0
    assert monitor.on_prediction(pred("c1", "s1", [("p1", 3)])) == []  # R = 4 - 3 = 1
    (alert,) = monitor.on_prediction(pred("c2", "s1", [("p1", 2.5)], hours_later=1, version=7,
                                          session=4))
    # R = 4 - (3 + 2.5) = -1.5
    assert (alert.predicted_demand, alert.resupply_quantity, alert.shortfall) == (5.5, 4.0, 1.5)
    assert (alert.raised_by.customer_id, alert.raised_by.session_index) == ("c2", 4)
    assert (alert.alert_id, alert.store_id, alert.product_id, alert.day) == ("s1:p1:2024-03-06:1", "s1", "p1", D2)
    assert alert.as_of.ToMicroseconds() == AS_OF + HOUR and alert.model.version == 7
    assert monitor.shortfalls() == [("s1", "p1", D2, 1.5)]


def test_alerts_once_per_cell_until_its_values_change():
    monitor = StockoutMonitor()
    monitor.on_resupply(resupply("s1", "p1", D2, 4))
    assert len(monitor.on_prediction(pred("c1", "s1", [("p1", 5)]))) == 1  # short by 1
    # Unrelated (covered) cell and a replayed identical prediction: nothing new for p1.
    assert monitor.on_resupply(resupply("s1", "p2", D2, 1)) == []
    assert monitor.on_prediction(pred("c2", "s1", [("p2", 1)])) == []
    assert monitor.on_prediction(pred("c1", "s1", [("p1", 5)])) == []
    assert monitor.on_resupply(resupply("s1", "p1", D2, 4)) == []
    # Expected units move it by fractions within the same whole unit short: no news.
    assert monitor.on_prediction(pred("c1", "s1", [("p1", 5.6)], hours_later=1)) == []
    # Its shortfall crosses a whole unit: a new revision.
    (again,) = monitor.on_prediction(pred("c1", "s1", [("p1", 6)], hours_later=2))
    assert (again.alert_id, again.shortfall) == ("s1:p1:2024-03-06:2", 2.0)
    # A newer plan covers it (no alert), then a newer one falls short again (alert).
    assert monitor.on_resupply(resupply("s1", "p1", D2, 10)) == []
    (third,) = monitor.on_resupply(resupply("s1", "p1", D2, 4))
    assert (third.alert_id, third.resupply_quantity, third.shortfall) == ("s1:p1:2024-03-06:3", 4.0, 2.0)


def test_days_outside_the_resupply_plan_never_alert_until_the_plan_covers_them():
    monitor = StockoutMonitor()
    assert monitor.on_prediction(pred("c1", "s1", [("p1", 3)])) == []  # D2 unplanned: unknown
    assert monitor.store("s1").shortfalls() == []
    # the first row for D2 (another product) puts D2 in the plan: p1 gets nothing that day
    (alert,) = monitor.on_resupply(resupply("s1", "p9", D2, 1))
    assert (alert.product_id, alert.day, alert.shortfall) == ("p1", D2, 3.0)
    assert monitor.store("s1").shortfalls() == [("p1", D2, 3.0)]
    restored = StockoutMonitor.from_dict(monitor.to_dict(), monitor.config)
    assert restored.store("s1").planned_days == {D2}
    monitor.expire_before("2024-03-07")
    assert monitor.store("s1").planned_days == set()


def test_quantities_add_and_subtract_exactly():
    store = StockoutMonitor()
    for i in range(10):
        store.on_prediction(pred(f"c{i}", "s1", [("p1", 0.1)]))
    for i in range(10):
        store.on_prediction(pred(f"c{i}", "s1", [("p1", 0.1)], days=30, hours_later=1))
    assert store.store("s1").demand == {}


def test_state_round_trip_and_expiry():
    monitor = StockoutMonitor()
    monitor.on_resupply(resupply("s1", "p1", D2, 1))
    monitor.on_prediction(pred("c1", "s1", [("p1", 3), ("p2", 1)]))
    monitor.on_prediction(pred("c2", "s1", [("p1", 1)], days=0))
    restored = StockoutMonitor.from_dict(monitor.to_dict(), monitor.config)
    assert restored.to_dict() == monitor.to_dict()
    assert restored.on_prediction(pred("c1", "s1", [("p1", 4)], hours_later=1)) == monitor.on_prediction(
        pred("c1", "s1", [("p1", 4)], hours_later=1)
    )
    monitor.expire_before("2024-03-05")  # c2's demand on 2024-03-04 goes, with c2
    assert ("p1", "2024-03-04") not in monitor.store("s1").demand
    assert set(monitor.store("s1").contributions) == {"c1"}
    monitor.expire_before("2024-03-07")
    assert monitor.store("s1").demand == {} and monitor.store("s1").contributions == {}


def test_batch_form_and_customer_agnostic_keying():
    alerts = oos_alerts(
        [pred("c1", "s1", [("p1", 3)]), pred("c1", "s1", [("p1", 1)], hours_later=1), pred("c2", "s2", [("p2", 2)])],
        [resupply("s1", "p1", D2, 2), resupply("s2", "p2", D2, 1)],
    )
    # s1: newest c1 prediction wants 1 <= 2 (no alert); s2: 2 - 1 = 1 short.
    assert [(a.store_id, a.product_id, a.shortfall) for a in alerts] == [("s2", "p2", 1.0)]
    store_mode = StockoutConfig(source=DemandSource.STORE)
    assert contributor_key(pred("store:s1", "s1", []), store_mode) == "store:s1"
    assert contributor_key(pred("c1", "s1", []), StockoutConfig()) == "c1"


def test_store_state_rejects_other_stores_and_bad_config():
    with pytest.raises(Exception, match="sent to store"):
        StoreStockout("s1").on_resupply(resupply("s2", "p1", D2, 1))
    with pytest.raises(ConfigError):
        StockoutConfig(n_days=0)


class _NoScan(dict):
    """A store table that fails if anything walks through it (lookups and writes are fine)."""

    def _scan(self, *args):
        raise AssertionError("the whole table was walked through")

    __iter__ = keys = items = values = _scan


def _big_store() -> StoreStockout:
    store = StoreStockout("s1")
    days = ["2024-03-05", "2024-03-06", "2024-03-07"]
    for p in range(50):
        for day in days:
            store.set_resupply(f"p{p}", day, 100)
    for c in range(200):
        cells = {(f"p{(c + k) % 50}", days[k % 3]): 700_000 for k in range(6)}
        store.apply(ContributionUpdate("s1", f"c{c}", cells, AS_OF, ("lens", 1, "")))
    return store


def test_an_event_works_on_the_cells_it_touches_not_the_whole_store():
    store = _big_store()
    assert store.expire_before("2024-03-04") == set()
    for name in ("contributions", "demand", "resupply", "cell_source", "alerted", "revisions"):
        setattr(store, name, _NoScan(getattr(store, name)))
    # a newer prediction of a contributor, a new one, a plan row of a planned day, and the
    # expiry every demand event asks for with the watermark's day: none walks the store
    alerts = store.apply(ContributionUpdate("s1", "c7", {("p7", "2024-03-06"): 5_000_000},
                                            AS_OF + HOUR, ("lens", 1, "")))
    alerts += store.apply(ContributionUpdate("s1", "new", {("p9", "2024-03-07"): 200_000_000},
                                             AS_OF + HOUR, ("lens", 1, "")))
    alerts += store.set_resupply("p7", "2024-03-06", 1)
    assert store.expire_before("2024-03-04") == set()
    assert [a.alert_id for a in alerts] == ["s1:p9:2024-03-07:1", "s1:p7:2024-03-06:1"]
    # and the parts the worker writes after it: the day's cells and the contributor's
    cell = ("p7", "2024-03-06")
    assert ["p7", store.demand[cell], [AS_OF + HOUR, "lens", 1, ""], [9, 1_000_000], 1] in \
        store.day_rows("2024-03-06")
    assert store.contribution_row("c7") == [AS_OF + HOUR, [["p7", "2024-03-06", 5_000_000]]]


def test_a_store_loaded_from_its_parts_is_the_store_it_was_saved_from():
    store = _big_store()
    store.apply(ContributionUpdate("s1", "gone", {}, AS_OF, ("lens", 1, "")))
    store.expire_before("2024-03-04")
    store.set_resupply("p1", "2024-03-08", 0)  # a planned day without demand
    parts = StoreStockout.in_parts("s1", store.config, store.planned_days, store.horizon)
    assert parts.horizon == "2024-03-04" and parts.day_rows("2024-03-05") == []
    for contributor in store.contributions:
        parts.load_contribution(contributor, store.contribution_row(contributor))
    for day in store.cell_days():
        parts.load_day(day, store.day_rows(day))
    for day in store.planned_days:
        parts.load_plan_day(day, store.plan_day(day))
    assert parts.to_dict() == store.to_dict()
    assert parts.cell_days() == store.cell_days() == {"2024-03-05", "2024-03-06", "2024-03-07"}
    # the next event works alike on both
    update = ContributionUpdate("s1", "c3", {("p3", "2024-03-05"): 200_000_000}, AS_OF + HOUR,
                                ("lens", 1, ""))
    assert parts.apply(update) == store.apply(update) != []
    assert parts.to_dict() == store.to_dict()


def test_expiry_skips_no_cell_that_a_full_scan_would_drop():
    """Against a twin that walks the whole store at every expiry: the same state and alerts,
    also for cells of past days that arrive late and for a store read back from its dict."""
    import random

    rng = random.Random(5)
    days = [f"2024-03-{d:02d}" for d in range(1, 21)]
    alerted = 0
    fast, slow = StoreStockout("s1"), StoreStockout("s1")
    for step in range(2_000):
        today = step // 150
        roll = rng.random()
        for store in (fast, slow):
            rng_state = rng.getstate()
            if roll < 0.25:
                alerts = store.set_resupply(f"p{rng.randrange(8)}",
                                            days[max(0, today + rng.randrange(-2, 3))],
                                            rng.randrange(4))
            elif roll < 0.9:
                cells = {(f"p{rng.randrange(8)}", days[max(0, today + rng.randrange(-2, 3))]):
                         rng.randrange(1, 3_000_000) for _ in range(rng.randrange(0, 3))}
                alerts = store.apply(ContributionUpdate(
                    "s1", f"c{rng.randrange(20)}", cells, AS_OF + step * HOUR // 10,
                    ("lens", 1, "")))
            else:
                if store is slow:
                    store._horizon = ""  # the twin: nothing known, walk everything
                alerts = store.expire_before(days[max(0, today - 1)])
            if store is fast:
                fast_alerts = alerts
                rng.setstate(rng_state)
        assert fast_alerts == alerts
        alerted += len(alerts)
        assert fast.to_dict() == slow.to_dict()
        if step % 400 == 399:
            fast = StoreStockout.from_dict(fast.to_dict(), fast.config)
    assert alerted > 50 and fast.to_dict()["demand"]
    assert min(day for _, day in fast.demand) >= days[10]  # the old days did expire
