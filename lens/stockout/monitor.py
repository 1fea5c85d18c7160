"""Algorithm 2 across stores in one process: routes predictions and resupplies to StoreStockout.

The live service splits this in two: the funnel-state service (partitioned by customer) calls
``contribution_updates(prediction, config, previous_store=state.last_prediction.store_id,
history=state.baskets())`` and sends each ``ContributionUpdate`` keyed by store; the stock-out
workers (partitioned by store) hold one ``StoreStockout`` per store and ``apply`` them.
``StockoutMonitor`` does both in memory (batch ``lens stockouts``, tests), remembering each
contributor's current store itself.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lens import v1
from lens.data.basket import Basket
from lens.errors import DataError
from lens.stockout.demand import StockoutConfig, contribution_updates, contributor_key
from lens.stockout.store_stockout import StoreStockout
from lens.stream.event_time import from_timestamp

__all__ = ["StockoutMonitor", "oos_alerts"]


@dataclass
class StockoutMonitor:
    config: StockoutConfig = field(default_factory=StockoutConfig)
    stores: dict[str, StoreStockout] = field(default_factory=dict)
    contributor_store: dict[str, str] = field(default_factory=dict)

    def store(self, store_id: str) -> StoreStockout:
        found = self.stores.get(store_id)
        if found is None:
            found = self.stores[store_id] = StoreStockout(store_id, self.config)
        return found

    def on_prediction(
        self, prediction: v1.Prediction, history: Sequence[Basket] = ()
    ) -> list[v1.StockoutAlert]:
        """Replace the contributor's demand with this prediction's (and its ``history``'s
        rhythms, see ``contribution``); alerts of changed cells."""
        key = contributor_key(prediction, self.config)
        previous = self.contributor_store.get(key)
        current = self.stores.get(previous) if previous is not None else None
        newer_elsewhere = (
            current is not None
            and key in current.contributions
            and current.contributions[key].as_of > from_timestamp(prediction.as_of)
        )
        if newer_elsewhere:
            return []  # an older prediction than the one in force
        alerts = []
        updates = contribution_updates(
            prediction, self.config, previous_store=previous, history=history
        )
        for update in updates:
            alerts += self.store(update.store_id).apply(update)
        self.contributor_store[key] = prediction.store_id
        return alerts

    def on_resupply(self, resupply: v1.Resupply) -> list[v1.StockoutAlert]:
        return self.store(resupply.store_id).on_resupply(resupply)

    def expire_before(self, day: str) -> None:
        for store in self.stores.values():
            store.expire_before(day)
        live = {k for s in self.stores.values() for k in s.contributions}
        self.contributor_store = {k: v for k, v in self.contributor_store.items() if k in live}

    def shortfalls(self) -> list[tuple[str, str, str, float]]:
        """(store, product, day, shortfall) of every short cell now, sorted."""
        return [(sid, *row) for sid in sorted(self.stores) for row in self.stores[sid].shortfalls()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "stores": {sid: s.to_dict() for sid, s in sorted(self.stores.items())},
            "contributor_store": dict(sorted(self.contributor_store.items())),
        }

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: StockoutConfig = StockoutConfig()
    ) -> "StockoutMonitor":
        if data.get("v") != 1:
            raise DataError(f"stock-out monitor state format {data.get('v')!r} is not 1")
        return cls(
            config,
            {sid: StoreStockout.from_dict(s, config) for sid, s in data["stores"].items()},
            dict(data["contributor_store"]),
        )


def oos_alerts(
    predictions: Iterable[v1.Prediction],
    resupplies: Iterable[v1.Resupply],
    config: StockoutConfig = StockoutConfig(),
    histories: Mapping[str, Sequence[Basket]] | None = None,
) -> list[v1.StockoutAlert]:
    """Batch Algorithm 2: the alerts standing after every resupply and prediction is applied
    (each contributor's newest prediction by as_of counts), sorted by store, day, product.
    ``histories``: contributor key (``contributor_key``) -> its baskets, oldest first."""
    monitor = StockoutMonitor(config)
    for resupply in resupplies:
        monitor.on_resupply(resupply)
    for prediction in sorted(predictions, key=lambda p: (p.as_of.seconds, p.as_of.nanos)):
        monitor.on_prediction(
            prediction, (histories or {}).get(contributor_key(prediction, config), ())
        )
    return [a for sid in sorted(monitor.stores) for a in monitor.stores[sid].standing_alerts()]
