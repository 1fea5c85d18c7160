"""Closed sessions as the funnel worker publishes them, built by hand."""

import datetime as dt

from lens import v1


def session(customer: str, index: int, day: int, items: dict[str, float], *, store: str = "S1") -> v1.Session:
    """Customer ``customer``'s ``index``-th basket on day ``day`` of January 2026 (10:00 UTC);
    ``items``: product -> units (amount = 2 per unit)."""
    message = v1.Session(
        customer_id=customer,
        store_id=store,
        transaction_id=f"T-{customer}-{index}",
        session_index=index,
        close_reason=v1.CloseReason.CLOSE_REASON_BASKET_CLOSED,
    )
    message.timestamp.FromDatetime(dt.datetime(2026, 1, day, 10, 0))
    for product, units in items.items():
        message.items.add(product_id=product, quantity=units, amount=2.0 * units)
    return message
