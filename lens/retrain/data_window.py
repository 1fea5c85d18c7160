"""The data a retrain sees: a window of recent baskets, and the most recent days held out.

Days count back from the newest basket in the data, not from the wall clock, so the same history
gives the same window whenever the job runs (and a replayed or late history works too).

``recent_holdout`` is the retrain's evaluation protocol: the last basket of every customer whose
last basket falls in the final ``eval_days`` days (and who has a basket before it) is the target;
everything else trains. Champion and challenger are scored on its cases with ``lens eval``'s
metrics (``lens.evaluation.evaluate``).
"""

import datetime as dt

from lens.data.basket import Basket, Funnels
from lens.errors import DataError
from lens.evaluation.protocols import EvaluationCase, Split

__all__ = ["newest_basket", "recent_holdout", "recent_window"]

PROTOCOL = "recent"


def newest_basket(funnels: Funnels) -> dt.datetime:
    """Timestamp of the newest basket; DataError when there is none."""
    stamps = [funnel[-1].timestamp for funnel in funnels.values() if funnel]
    if not stamps:
        raise DataError("the history has no basket; feed the store (lens history sink) or pass --data.")
    return max(stamps)


def recent_window(funnels: Funnels, days: float | None) -> dict[str, tuple[Basket, ...]]:
    """Each customer's baskets of the last ``days`` days before the newest basket (customers left
    without one are dropped); every basket when ``days`` is None."""
    if days is None:
        return {c: tuple(f) for c, f in funnels.items() if f}
    since = newest_basket(funnels) - dt.timedelta(days=days)
    window = {c: tuple(b for b in f if b.timestamp >= since) for c, f in funnels.items()}
    return {c: f for c, f in window.items() if f}


def recent_holdout(window: Funnels, eval_days: float) -> Split:
    """A Split whose ``test`` cases are the last baskets of the final ``eval_days`` days (see the
    module docstring) and whose ``train`` is the rest of ``window``; ``valid`` is empty."""
    since = newest_basket(window) - dt.timedelta(days=eval_days)
    cases = {
        c: EvaluationCase(customer_id=c, history=tuple(f[:-1]), target=f[-1])
        for c, f in sorted(window.items())
        if len(f) >= 2 and f[-1].timestamp >= since and f[-1].items
    }
    if not cases:
        raise DataError(
            f"no customer has a last basket in the final {eval_days:g} days of the window after "
            "an earlier one: nothing to compare champion and challenger on. Widen --since or "
            "--eval-days."
        )
    train = {c: tuple(f[:-1]) if c in cases else tuple(f) for c, f in window.items()}
    return Split(protocol=PROTOCOL, seed=0, train=train, valid={}, test=cases)
