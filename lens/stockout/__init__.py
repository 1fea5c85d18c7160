"""Out-of-stock preventive alerts (paper, Algorithm 2): predicted demand vs the resupply plan.

- ``contribution``/``contribution_updates``: a prediction's (product, day) demand cells, from
  the model's basket and the contributor's per-product rhythms (``lens.stockout.rhythm``).
- ``StoreStockout``: one store's demand, plan, residuals and once-per-state alerts.
- ``StockoutMonitor``: all stores in one process; ``oos_alerts``: the batch form.
- ``StoreFunnel``: the customer-agnostic variant's store-day funnels (``DemandSource.STORE``).
"""

from lens.stockout.demand import (
    ContributionUpdate,
    DemandSource,
    StockoutConfig,
    contribution,
    contribution_updates,
    contributor_key,
    store_funnel_key,
)
from lens.stockout.monitor import StockoutMonitor, oos_alerts
from lens.stockout.store_funnel import StoreFunnel
from lens.stockout.store_stockout import StoreStockout

__all__ = [
    "ContributionUpdate",
    "DemandSource",
    "StockoutConfig",
    "StockoutMonitor",
    "StoreFunnel",
    "StoreStockout",
    "contribution",
    "contribution_updates",
    "contributor_key",
    "oos_alerts",
    "store_funnel_key",
]
