"""Customer-agnostic funnels (``DemandSource.STORE``): a store's daily sales as one funnel.

The paper reframes out-of-stock prediction for retailers without customer ids as "location/store
transaction funnels". ``StoreFunnel`` builds that funnel from the same TransactionLine stream:
every line of a store on one UTC day joins one basket (transaction ``"<store>:<YYYY-MM-DD>"``,
customer ``store_funnel_key(store)``), and the day's basket closes when a later day's line
arrives or after the sessionizer's inactivity timeout (default 1 day). Underneath it is the
ordinary ``Sessionizer`` and ``FunnelState``, so the model, the predictions and
``StockoutMonitor`` need no other change: the predictions for the store funnel are keyed by
``store_funnel_key(store)`` and name the store itself as their store.

Resent lines (same transaction_id and line_no) are dropped while their day is open; once a day
closed, any line for it counts as late (there is no per-line memory of closed days).
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from lens import v1
from lens.errors import DataError
from lens.stockout.demand import store_funnel_key
from lens.stream.event_time import from_timestamp, iso_date
from lens.stream.funnel_state import FunnelState
from lens.stream.sessionizer import Outcome, Sessionizer, SessionizerConfig, Step

__all__ = ["StoreFunnel"]


def _default_config() -> SessionizerConfig:
    return SessionizerConfig(inactivity_timeout=dt.timedelta(days=1), remember_closed=2)


@dataclass
class StoreFunnel:
    """One store's day-basket funnel. State: the FunnelState plus the open day's line keys."""

    store_id: str
    config: SessionizerConfig = field(default_factory=_default_config)
    state: FunnelState | None = None
    day: str = ""  # the newest day seen (ISO date)
    seen: set[tuple[str, int]] = field(default_factory=set)  # (transaction_id, line_no) of `day`
    next_line_no: int = 1  # line numbers of the day baskets, never reused

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = FunnelState(store_funnel_key(self.store_id))
        self._sessionizer = Sessionizer(self.config)

    def on_line(self, line: v1.TransactionLine) -> Step:
        """Add one validated line of this store; closed day baskets come back in the Step."""
        if line.store_id != self.store_id:
            raise DataError(
                f"line of store {line.store_id!r} sent to store funnel {self.store_id!r}"
            )
        assert self.state is not None
        day = iso_date(from_timestamp(line.timestamp))
        if day > self.day:
            self.day, self.seen = day, set()
        key = (line.transaction_id, line.line_no)
        if day == self.day and key in self.seen:
            self.state.stats.lines_seen += 1
            self.state.stats.duplicate_lines += 1
            detail = f"line {line.line_no} of transaction {line.transaction_id!r} was seen before"
            return Step(Outcome.DUPLICATE, (), detail)
        if day == self.day:
            self.seen.add(key)
        mapped = v1.TransactionLine(
            transaction_id=f"{self.store_id}:{day}",
            line_no=self.next_line_no,
            customer_id=self.state.customer_id,
            store_id=self.store_id,
            product_id=line.product_id,
            timestamp=line.timestamp,
            quantity=line.quantity,
            amount=line.amount,
        )
        self.next_line_no += 1
        return self._sessionizer.on_line(self.state, mapped)

    def close_idle(self, now: int) -> v1.Session | None:
        assert self.state is not None
        return self._sessionizer.close_idle(self.state, now)

    def to_dict(self) -> dict[str, Any]:
        assert self.state is not None
        return {
            "store": self.store_id,
            "state": self.state.to_dict(),
            "day": self.day,
            "seen": sorted([tx, n] for tx, n in self.seen),
            "next": self.next_line_no,
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: SessionizerConfig | None = None
    ) -> "StoreFunnel":
        return cls(
            store_id=data["store"],
            config=config or _default_config(),
            state=FunnelState.from_dict(data["state"]),
            day=data["day"],
            seen={(tx, n) for tx, n in data["seen"]},
            next_line_no=data["next"],
        )
