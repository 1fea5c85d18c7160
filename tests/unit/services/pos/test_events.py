import datetime as dt

from lens import v1
from lens.data.basket import Basket
from services.pos import basket_events, baskets_in_time_order, event_key


def basket(customer="C1", basket_id="T1", when=dt.datetime(2026, 1, 5, 10, 31), items=("P1", "P2")):
    n = len(items)
    return Basket(customer, basket_id, "S1", when, tuple(items), tuple(float(i + 1) for i in range(n)),
                  tuple(10.0 * (i + 1) for i in range(n)))


def test_one_line_per_item_then_basket_closed_with_line_count():
    events = basket_events(basket(items=("P1", "P2", "P3")))
    assert [e.WhichOneof("event") for e in events] == ["line", "line", "line", "basket_closed"]
    lines = [e.line for e in events[:-1]]
    assert [l.line_no for l in lines] == [1, 2, 3]
    assert [l.product_id for l in lines] == ["P1", "P2", "P3"]
    assert [l.quantity for l in lines] == [1.0, 2.0, 3.0]
    assert [l.amount for l in lines] == [10.0, 20.0, 30.0]
    assert {(l.transaction_id, l.customer_id, l.store_id) for l in lines} == {("T1", "C1", "S1")}
    closed = events[-1].basket_closed
    assert (closed.transaction_id, closed.customer_id, closed.store_id, closed.line_count) == ("T1", "C1", "S1", 3)


def test_events_carry_the_basket_time_as_utc_or_the_given_time():
    events = basket_events(basket())
    expected = dt.datetime(2026, 1, 5, 10, 31, tzinfo=dt.timezone.utc)
    assert {e.line.timestamp.ToDatetime(dt.timezone.utc) for e in events[:-1]} == {expected}
    assert events[-1].basket_closed.timestamp.ToDatetime(dt.timezone.utc) == expected
    now = dt.datetime(2030, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    restamped = basket_events(basket(), timestamp=now)
    assert restamped[0].line.timestamp.ToDatetime(dt.timezone.utc) == now
    assert restamped[-1].basket_closed.timestamp.ToDatetime(dt.timezone.utc) == now


def test_ids_stay_strings_with_leading_zeros_and_key_is_the_customer():
    events = basket_events(basket(customer="01104905", items=("4710199010372",)))
    assert events[0].line.customer_id == "01104905"
    assert {event_key(e) for e in events} == {b"01104905"}


def test_baskets_of_all_customers_interleave_in_time_order():
    t = dt.datetime(2026, 1, 5)
    funnels = {
        "A": [basket("A", "A1", t), basket("A", "A2", t + dt.timedelta(days=2))],
        "B": [basket("B", "B1", t + dt.timedelta(hours=1)), basket("B", "B2", t + dt.timedelta(days=3))],
        "C": [basket("C", "C1", t)],
    }
    order = [b.basket_id for b in baskets_in_time_order(funnels)]
    assert order == ["A1", "C1", "B1", "A2", "B2"]


def test_round_trip_through_the_wire_format():
    for event in basket_events(basket()):
        assert v1.PosEvent.FromString(event.SerializeToString()) == event
