"""Property: incremental demand always equals demand rebuilt from each contributor's newest
prediction, whatever the order predictions and resupplies arrive in."""

from hypothesis import given, settings
from hypothesis import strategies as st

from lens import v1
from lens.stockout import StockoutConfig, StockoutMonitor, contribution
from lens.stream.event_time import to_timestamp

T0 = 1_709_546_400_000_000  # 2024-03-04 10:00 UTC
HOUR = 3_600_000_000

predictions = st.builds(
    lambda customer, store, hour, days, basket: v1.Prediction(
        customer_id=customer,
        store_id=store,
        as_of=to_timestamp(T0 + hour * HOUR),
        days_to_next=days,
        basket=[v1.PredictedItem(product_id=p, quantity=q) for p, q in basket],
    ),
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["s1", "s2"]),
    st.integers(0, 48),
    st.sampled_from([0.0, 0.4, 1.5, 3.0, 9.0]),
    st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from([0.0, 0.1, 1.0, 2.5])), max_size=3),
)


@given(st.lists(predictions, max_size=25))
@settings(max_examples=150, deadline=None)
def test_demand_is_the_newest_prediction_of_each_contributor(stream):
    config = StockoutConfig(n_days=7)
    monitor = StockoutMonitor(config)
    newest: dict[str, v1.Prediction] = {}
    for prediction in stream:
        monitor.on_prediction(prediction)
        held = newest.get(prediction.customer_id)
        if held is None or prediction.as_of.ToMicroseconds() >= held.as_of.ToMicroseconds():
            newest[prediction.customer_id] = prediction
    expected: dict[str, dict] = {}
    for prediction in newest.values():
        cells = expected.setdefault(prediction.store_id, {})
        for cell, q in contribution(prediction, config).items():
            cells[cell] = cells.get(cell, 0) + q
    for store_id in ("s1", "s2"):
        assert monitor.store(store_id).demand == expected.get(store_id, {})
