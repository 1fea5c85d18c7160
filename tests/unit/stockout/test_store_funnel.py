import datetime as dt

from lens import v1
from lens.stockout import DemandSource, StockoutConfig, StockoutMonitor, StoreFunnel
from lens.stream.event_time import to_timestamp
from lens.stream.sessionizer import Outcome

DAY1 = int(dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
HOUR = 3_600_000_000


def line(tx, n, product, hours, customer="c1", quantity=1.0):
    return v1.TransactionLine(
        transaction_id=tx, line_no=n, customer_id=customer, store_id="s1", product_id=product,
        timestamp=to_timestamp(DAY1 + int(hours * HOUR)), quantity=quantity, amount=2.0,
    )


def test_a_store_day_is_one_basket_of_every_customer():
    funnel = StoreFunnel("s1")
    outcomes = [
        funnel.on_line(line("t1", 1, "p1", 0, "c1", 2)).outcome,
        funnel.on_line(line("t2", 1, "p1", 1, "c2", 1)).outcome,
        funnel.on_line(line("t2", 1, "p1", 1, "c2", 1)).outcome,  # resent
        funnel.on_line(line("t2", 2, "p2", 2, "c2", 1)).outcome,
    ]
    assert outcomes == [Outcome.ADDED, Outcome.ADDED, Outcome.DUPLICATE, Outcome.ADDED]
    step = funnel.on_line(line("t3", 1, "p1", 24, "c3"))  # the next day closes day 1
    (session,) = step.sessions
    assert (session.customer_id, session.transaction_id) == ("store:s1", "s1:2024-03-04")
    assert [(i.product_id, i.quantity) for i in session.items] == [("p1", 3.0), ("p2", 1.0)]
    assert session.close_reason == v1.CloseReason.CLOSE_REASON_NEW_TRANSACTION
    late = funnel.on_line(line("t9", 1, "p1", 5))  # day 1 is closed
    assert late.outcome is Outcome.LATE
    restored = StoreFunnel.from_dict(funnel.to_dict())
    assert restored.to_dict() == funnel.to_dict()
    stats = funnel.state.stats
    assert stats.lines_seen == 6 == stats.lines_in_sessions + stats.duplicate_lines + stats.late_lines + 1


def test_store_funnel_predictions_feed_the_same_monitor():
    monitor = StockoutMonitor(StockoutConfig(source=DemandSource.STORE))
    prediction = v1.Prediction(
        customer_id="store:s1", store_id="s1", as_of=to_timestamp(DAY1), days_to_next=1.0,
        basket=[v1.PredictedItem(product_id="p1", quantity=30, score=1.0)],
    )
    monitor.on_resupply(v1.Resupply(store_id="s1", product_id="p0", day="2024-03-05", quantity=5))
    (alert,) = monitor.on_prediction(prediction)
    assert (alert.store_id, alert.day, alert.shortfall) == ("s1", "2024-03-05", 30.0)
    assert set(monitor.store("s1").contributions) == {"store:s1"}
