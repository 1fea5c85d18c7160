"""Per-product purchase rhythms: demand falls on the day each need falls due."""

import datetime as dt

import pytest

from lens import v1
from lens.data.basket import Basket
from lens.stockout import StockoutConfig, StockoutMonitor, contribution
from lens.stockout.rhythm import MIN_SPREAD, due_days, rhythms
from lens.stream.event_time import from_datetime, to_timestamp

T0 = dt.datetime(2026, 3, 2, 10, 0)  # naive UTC, a Monday


def day(n: int) -> str:
    return (T0 + dt.timedelta(days=n)).date().isoformat()


def basket(customer, n, items, qty=1.0):
    names = tuple(items.split())
    return Basket(customer, f"{customer}-{n}", "S1", T0 + dt.timedelta(days=n), names,
                  tuple(qty for _ in names), tuple(1.0 for _ in names))


def prediction(customer, as_of_day, items="", days_to_next=1.0):
    """The model's answer after the customer's session of ``as_of_day``: ``items`` (2 units
    each, score 1) back in ``days_to_next`` days."""
    as_of = T0 + dt.timedelta(days=as_of_day)
    return v1.Prediction(
        prediction_id=f"{customer}:{as_of_day}", customer_id=customer, store_id="S1",
        as_of=to_timestamp(from_datetime(as_of.replace(tzinfo=dt.timezone.utc))),
        basket=[v1.PredictedItem(product_id=p, quantity=2.0, score=1.0) for p in items.split()],
        days_to_next=days_to_next,
    )


def units(cells):
    return {cell: round(q / 1_000_000, 3) for cell, q in cells.items()}


def test_a_weekly_need_falls_on_its_day_not_on_the_predicted_visit():
    # coffee every 7 days (days 0, 7, 14); on day 15 the model expects the customer tomorrow
    # with coffee and bread in the basket
    history = [basket("c", 0, "coffee"), basket("c", 7, "coffee bread"), basket("c", 14, "coffee"),
               basket("c", 15, "milk")]
    cells = units(contribution(prediction("c", 15, "coffee bread", days_to_next=1.0),
                               StockoutConfig(n_days=7), history))
    coffee = {d: q for (p, d), q in cells.items() if p == "coffee"}
    # due day 21; a rhythm of whole days is known to half a day: 68% that day, 16% either side
    # (and nothing on day 16, where the model put it)
    assert coffee == {day(20): 0.157, day(21): 0.683, day(22): 0.157}
    assert cells[("bread", day(16))] == 2.0  # no rhythm (one purchase): the model's day and units


def test_a_rhythm_needs_three_purchase_days_and_ignores_later_history():
    twice = [basket("c", 0, "coffee"), basket("c", 7, "coffee")]
    assert rhythms(twice) == {}
    later = [*twice, basket("c", 14, "coffee"), basket("c", 30, "coffee")]
    # a prediction as of day 14 knows nothing of day 30
    cells = contribution(prediction("c", 14, days_to_next=float("nan")), StockoutConfig(), later)
    assert max(cells, key=cells.get) == ("coffee", day(21))


def test_interval_is_the_median_gap_and_units_the_mean():
    # one purchase made as another brand doubles one gap (0, 7, 21, 28)
    bought = ((0, 1), (7, 2), (21, 3), (28, 2))
    (rhythm,) = rhythms([basket("c", n, "coffee", qty=q) for n, q in bought]).values()
    assert rhythm.interval == 7.0 and rhythm.units == 2.0
    assert rhythm.last == (T0 + dt.timedelta(days=28)).date()
    assert rhythm.spread == pytest.approx(3.3, abs=0.01)  # the doubled gap widens it


def test_a_late_need_spreads_from_tomorrow_and_a_long_lapsed_one_adds_nothing():
    (rhythm,) = rhythms([basket("c", n, "coffee") for n in (0, 7, 14)]).values()
    assert rhythm.spread == MIN_SPREAD
    # seen on day 21, its due day, without coffee: still due, but a day late from tomorrow on
    late = due_days(rhythm, (T0 + dt.timedelta(days=21)).date(), 7)
    assert sum(late.values()) == pytest.approx(1.0, abs=0.01)
    assert max(late.values()) == pytest.approx(0.51, abs=0.01)  # 0.81 were it piled up
    # seen on day 22 without coffee: two days late tomorrow, 4 spreads: lapsed
    assert due_days(rhythm, (T0 + dt.timedelta(days=22)).date(), 7) == {}


def test_a_cohort_due_the_same_day_is_short_that_day_only():
    # any shortfall alerts: the cohort's 0.4 of a unit short is what the days are told apart by
    monitor = StockoutMonitor(StockoutConfig(n_days=7, min_shortfall=0.0))
    for d in range(18, 24):
        monitor.on_resupply(v1.Resupply(store_id="S1", product_id="coffee", day=day(d), quantity=3))
    alerts = []
    for customer, offset in (("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)):
        # each on their own weekly rhythm, all due on day 21, seen last on different days
        history = [basket(customer, n, "coffee") for n in (0, 7, 14)]
        history.append(basket(customer, 14 + offset, "milk"))
        alerts += monitor.on_prediction(prediction(customer, 14 + offset), history)
    assert {a.day for a in alerts} == {day(21)}
    (short,) = monitor.shortfalls()
    assert short[:3] == ("S1", "coffee", day(21))
    assert short[3] == pytest.approx(5 * 0.683 - 3, abs=0.01)


def test_a_predicted_item_counts_its_expected_units():
    pred = prediction("c", 0, "tea coffee")
    pred.basket[0].score = 0.25
    pred.basket[1].score = 7.5  # a baseline's unnormalised score is clipped to 1
    assert units(contribution(pred, StockoutConfig())) == {("tea", day(1)): 0.5,
                                                           ("coffee", day(1)): 2.0}
