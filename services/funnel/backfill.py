"""The backfill marker: records of pos.transactions that carry history, not live sales.

``lens backfill --data PATH`` publishes a customer history to pos.transactions exactly as
``lens pos replay`` does (lines, then BasketClosed, keyed by customer, in time order), with the
record header ``lens-backfill: 1`` on every record. The funnel worker sessionizes them like
live records, so a new deployment's table holds each customer's kept sessions and stats, but
a session closed by a marked record is stored and published as backfilled
(``Session.backfilled``, ``CLOSE_REASON_BACKFILL``): it raises no anomaly alert and asks for no
prediction. A header rather than a field keeps the PosEvent schema what POS terminals send.

The history must end before the live stream starts: a backfilled line older than a customer's
last live session is late (dead-lettered), like any late line.
"""

from typing import Any

__all__ = ["BACKFILL_HEADER", "BACKFILL_HEADERS", "is_backfill"]

BACKFILL_HEADER = "lens-backfill"
BACKFILL_HEADERS = [(BACKFILL_HEADER, b"1")]


def is_backfill(headers: Any) -> bool:
    """Whether a record's headers (a mapping or (name, value) pairs; None) carry the marker."""
    items = headers.items() if hasattr(headers, "items") else (headers or ())
    return any(name == BACKFILL_HEADER and value == b"1" for name, value in items)
