"""Tiny event builders shared by the stream tests. Times are minutes after T0 (2024-03-04, a Monday)."""

import datetime as dt

from lens import v1
from lens.stream.event_time import MICROS_PER_SECOND, to_timestamp

T0 = int(dt.datetime(2024, 3, 4, 10, 0, tzinfo=dt.timezone.utc).timestamp()) * MICROS_PER_SECOND
MINUTE = 60 * MICROS_PER_SECOND
DAY = 86_400 * MICROS_PER_SECOND


def at(minutes: float) -> int:
    return T0 + int(minutes * MINUTE)


def line(
    tx: str,
    line_no: int,
    product: str,
    minutes: float = 0.0,
    *,
    customer: str = "c1",
    store: str = "s1",
    quantity: float = 1.0,
    amount: float = 1.0,
) -> v1.PosEvent:
    return v1.PosEvent(
        line=v1.TransactionLine(
            transaction_id=tx,
            line_no=line_no,
            customer_id=customer,
            store_id=store,
            product_id=product,
            timestamp=to_timestamp(at(minutes)),
            quantity=quantity,
            amount=amount,
        )
    )


def closed(tx: str, minutes: float = 0.0, *, customer: str = "c1", line_count: int = 0) -> v1.PosEvent:
    return v1.PosEvent(
        basket_closed=v1.BasketClosed(
            transaction_id=tx, customer_id=customer, timestamp=to_timestamp(at(minutes)), line_count=line_count
        )
    )
