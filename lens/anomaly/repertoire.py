"""The customer's side of Algorithm 1's level: how much of what they bought lately is new to them.

    novelty = share of the distinct products of the last ``window`` sessions that the customer
              never bought in the sessions before them (their established repertoire)

A behaviour change lasts: a customer who switches segment or takes up a new need (a baby, a pet)
keeps buying products from outside their repertoire session after session, while an ordinary
customer's exploration adds about one odd product per trip. The model's dA sees one basket at a
time and its ranking adapts to the new products after a session or two; the repertoire keeps
them new for the whole window. Measured on the synthetic benchmark (``bench/planted_detection.py``,
BENCHMARKS.md): a window of 4 sessions after at least 3 established ones separates switched
segments from every ordinary customer's highest novelty on seeds 7-9.

Needs that stop (``drop_need``) leave almost no trace here (BENCHMARKS.md); with the retailer's
product catalog, ``lens.anomaly.needs`` sees them at category level.
"""

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["novelty", "split_window"]

T = TypeVar("T")


def split_window(
    sessions: Sequence[T], window: int, established: int
) -> tuple[Sequence[T], Sequence[T]] | None:
    """(sessions before the window, the last ``window`` sessions); None when fewer than
    ``established`` sessions come before the window (a short history makes everything new)."""
    if len(sessions) < window + established:
        return None
    return sessions[:-window], sessions[-window:]


def novelty(sessions: Sequence[Sequence[str]], *, window: int, established: int) -> float | None:
    """Share of the distinct products of the last ``window`` of ``sessions`` (products per
    session, oldest first) absent from the sessions before them; None when fewer than
    ``established`` sessions come before the window (``split_window``), 0.0 when the window
    bought nothing."""
    parts = split_window(sessions, window, established)
    if parts is None:
        return None
    before = {p for products in parts[0] for p in products}
    recent = {p for products in parts[1] for p in products}
    return len(recent - before) / len(recent) if recent else 0.0
