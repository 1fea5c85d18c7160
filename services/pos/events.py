"""Baskets -> the records a POS terminal sends: one TransactionLine per item, then BasketClosed.

Pure functions, no Kafka: the publisher (``services.pos.publisher``) sends what these build.
"""

import datetime as dt
from collections.abc import Mapping, Sequence

from lens import v1
from lens.data.basket import Basket
from lens.stream.event_time import as_utc

__all__ = ["basket_events", "baskets_in_time_order", "event_key"]


def basket_events(basket: Basket, *, timestamp: dt.datetime | None = None) -> list[v1.PosEvent]:
    """The PosEvents of one checkout, in send order.

    ``line_no`` runs 1..n in the basket's item order; every event carries the basket's
    ``timestamp`` (or ``timestamp`` when given: the live simulator stamps events with the time it
    sends them); the last event is BasketClosed with ``line_count = n``.
    """
    when = as_utc(timestamp or basket.timestamp)
    events = []
    for line_no, (item, quantity, amount) in enumerate(
        zip(basket.items, basket.quantities, basket.amounts), start=1
    ):
        line = v1.TransactionLine(
            transaction_id=basket.basket_id,
            line_no=line_no,
            customer_id=basket.customer_id,
            store_id=basket.store_id,
            product_id=item,
            quantity=float(quantity),
            amount=float(amount),
        )
        line.timestamp.FromDatetime(when)
        events.append(v1.PosEvent(line=line))
    closed = v1.BasketClosed(
        transaction_id=basket.basket_id,
        customer_id=basket.customer_id,
        store_id=basket.store_id,
        line_count=len(basket.items),
    )
    closed.timestamp.FromDatetime(when)
    events.append(v1.PosEvent(basket_closed=closed))
    return events


def event_key(event: v1.PosEvent) -> bytes:
    """The record key: the customer id (pos.transactions is partitioned by customer)."""
    body = event.line if event.WhichOneof("event") == "line" else event.basket_closed
    return body.customer_id.encode("utf-8")


def baskets_in_time_order(funnels: Mapping[str, Sequence[Basket]]) -> list[Basket]:
    """Every basket of every customer, ordered by (timestamp, customer, basket id): a fleet of
    terminals sends checkouts as they happen, so the stream interleaves customers."""
    return sorted(
        (basket for funnel in funnels.values() for basket in funnel),
        key=lambda b: (as_utc(b.timestamp), b.customer_id, b.basket_id),
    )

