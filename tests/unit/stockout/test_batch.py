"""Batch Algorithm 2 (``lens stockouts``): funnel states, predictions and short cells."""

import datetime as dt

import pytest

from lens import v1
from lens.baselines.recommender import NextBasket
from lens.data.basket import Basket
from lens.errors import DataError
from lens.stockout import DemandSource, StockoutConfig
from lens.stockout.batch import (
    batch_predictions,
    customer_states,
    prediction_of,
    stockout_report,
    store_states,
)
from lens.stream.event_time import from_datetime, to_timestamp

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 10, 0)  # naive UTC, as history files hold it


def basket(customer, day, store, items, qty=1.0):
    names = tuple(items.split())
    return Basket(customer, f"{customer}-{day}", store, T0 + dt.timedelta(days=day),
                  names, tuple(qty for _ in names), tuple(2.0 for _ in names))


class TwoOfTheLast:
    """A fake model: the last basket again, 2 units each, back in ``days`` days."""

    name = "two-of-the-last"

    def __init__(self, days=1.0):
        self.days = days

    def fit(self, train):
        return self

    def predict(self, histories, k):
        return {
            c: NextBasket(items=h[-1].items, scores=tuple(0.5 for _ in h[-1].items),
                          basket=h[-1].items, quantities=tuple(2.0 for _ in h[-1].items),
                          days_to_next=self.days)
            for c, h in histories.items()
        }


FUNNELS = {
    # S1 twice, S2 once: expected store S1, though the last visit was S2
    "ann": (basket("ann", 0, "S1", "milk"), basket("ann", 2, "S1", "milk"),
            basket("ann", 4, "S2", "milk tea")),
    "bob": (basket("bob", 3, "S1", "milk"),),
}


def test_predictions_go_to_the_expected_store_as_of_the_last_session():
    states = customer_states(FUNNELS)
    assert states["ann"].stats.sessions == 3 and states["ann"].sessions[-1].backfilled
    predictions = {p.customer_id: p for p in batch_predictions(
        states, TwoOfTheLast(), model=v1.ModelRef(name="fake"))}
    ann = predictions["ann"]
    assert ann.store_id == "S1" and ann.session_index == 3
    assert ann.as_of == to_timestamp(states["ann"].sessions[-1].timestamp)
    assert [(i.product_id, i.quantity, i.score) for i in ann.basket] == [
        ("milk", 2.0, 0.5), ("tea", 2.0, 0.5)
    ]
    assert ann.days_to_next == 1.0 and ann.model.name == "fake"


def test_short_cells_are_demand_beyond_the_plan():
    states = customer_states(FUNNELS)
    predictions = batch_predictions(states, TwoOfTheLast(), model=v1.ModelRef())
    # ann bought milk on days 0, 2, 4: its rhythm puts most of it on day 6 (2026-03-08); her tea
    # (bought once) goes where the model says, day 5; bob (day 3) comes back day 4 for milk;
    # the model's items count 2 units x score 0.5
    plan = [
        v1.Resupply(store_id="S1", product_id="milk", day="2026-03-08", quantity=0),
        v1.Resupply(store_id="S1", product_id="tea", day="2026-03-07", quantity=0),
        v1.Resupply(store_id="S1", product_id="milk", day="2026-03-07", quantity=1),
        v1.Resupply(store_id="S1", product_id="milk", day="2026-03-06", quantity=1),
    ]
    report = stockout_report(predictions, plan, StockoutConfig(n_days=7), states=states)
    assert report.since == "2026-03-05" and report.predictions == 2 and report.no_time == 0
    cells = [(a.store_id, a.product_id, a.day, round(a.shortfall, 2)) for a in report.alerts]
    # milk: 0.68 on day 6 (the Normal(2 days, 0.5) mass of that day), 0.16 <= 1 on day 5;
    # tea 1 > 0; bob's milk 1 <= 1
    assert cells == [("S1", "tea", "2026-03-07", 1.0), ("S1", "milk", "2026-03-08", 0.68)]


def test_the_horizon_and_models_without_time_add_no_basket_demand():
    states = customer_states(FUNNELS)
    plan = [v1.Resupply(store_id="S1", product_id=p, day=d, quantity=q) for p, d, q in (
        ("tea", "2026-03-07", 0), ("tea", "2026-03-08", 0), ("milk", "2026-03-07", 1),
        ("milk", "2026-03-08", 0))]
    far = batch_predictions(states, TwoOfTheLast(days=9), model=v1.ModelRef())
    report = stockout_report(far, plan, StockoutConfig(n_days=7), states=states)
    assert [(a.product_id, a.day) for a in report.alerts] == [("milk", "2026-03-08")]  # rhythm
    answer = NextBasket(items=("tea",), scores=(0.5,), basket=("tea",))
    timeless = prediction_of(states["ann"], answer, v1.ModelRef())
    report = stockout_report([timeless], plan, states=states)
    assert report.no_time == 1
    assert [(a.product_id, a.day) for a in report.alerts] == [("milk", "2026-03-08")]


def test_cells_of_days_the_worker_has_expired_are_dropped():
    old = {"cat": (basket("cat", 0, "S1", "milk"),), "dan": (basket("dan", 9, "S1", "tea"),)}
    predictions = batch_predictions(customer_states(old), TwoOfTheLast(), model=v1.ModelRef())
    plan = [v1.Resupply(store_id="S1", product_id=p, day=d, quantity=0)
            for p, d in (("milk", "2026-03-03"), ("tea", "2026-03-12"))]
    report = stockout_report(predictions, plan, states=customer_states(old))
    assert report.since == "2026-03-10"  # the day before the newest prediction (dan's, day 9)
    assert [(a.product_id, a.day) for a in report.alerts] == [("tea", "2026-03-12")]


def test_customer_agnostic_funnels_are_store_days():
    def lines(b):
        return [v1.TransactionLine(transaction_id=b.basket_id, line_no=n, customer_id=b.customer_id,
                                   store_id=b.store_id, product_id=p,
                                   timestamp=to_timestamp(from_datetime(b.timestamp.replace(tzinfo=UTC))),
                                   quantity=1.0, amount=1.0)
                for n, p in enumerate(b.items, start=1)]

    history = sorted((b for f in FUNNELS.values() for b in f), key=lambda b: b.timestamp)
    states = store_states(line for b in history for line in lines(b))
    assert set(states) == {"S1", "S2"}
    assert states["S1"].customer_id == "store:S1" and states["S1"].stats.sessions == 3  # days 0, 2, 3
    assert states["S1"].open_basket is None  # the last day is closed too
    predictions = batch_predictions(states, TwoOfTheLast(), model=v1.ModelRef())
    plan = [v1.Resupply(store_id="S1", product_id="milk", day="2026-03-06", quantity=0)]
    # any shortfall alerts: the store's expected milk that day is under half a unit
    report = stockout_report(predictions, plan,
                             StockoutConfig(source=DemandSource.STORE, min_shortfall=0.0),
                             states=states)
    assert [(a.store_id, a.product_id, a.day) for a in report.alerts] == [("S1", "milk", "2026-03-06")]


def test_no_sessions_or_no_predictions_are_clear_errors():
    with pytest.raises(DataError, match="no funnel has a session"):
        batch_predictions({}, TwoOfTheLast(), model=v1.ModelRef())
    with pytest.raises(DataError, match="no predictions"):
        stockout_report([], [], states={})
