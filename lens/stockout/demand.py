"""Predicted demand of Algorithm 2: what one prediction adds to its store's (product, day) cells.

The paper's rule puts the predicted basket on the predicted day of the next visit:

    if days_to_next < n_days:
        for (product, quantity) in the predicted basket:
            demand[store][product][as_of day + round(days_to_next)] += quantity

but the next-basket model predicts the next visit, not when each need falls due (a product bought
every 7 days lands on whatever day the customer is next expected). So the demand is the expected
units per day, from two sources:

- every product with a purchase rhythm in the contributor's history up to the prediction
  (``lens.stockout.rhythm``): its mean units times the probability that it is bought that day,
  for the ``n_days`` days after the as-of day, whatever the model's basket and days_to_next;
- the model's basket for the other products (new or occasional ones): on the as-of day plus
  ``days_to_next`` rounded half up (0.5 -> 1; Python's round would go to even), if that is within
  ``n_days``; units = the item's predicted units (``default_quantity`` for a model without a
  quantity head) times its score clipped to [0, 1] (the model's probability that the item is in
  the basket; counting every predicted item as certain raised false alerts on the demo world).

Other rules, all deterministic:
- store: the prediction's ``store_id``, which the funnel-state service sets to the customer's
  expected store (``lens.stream.expected_store``: most frequent store among the kept recent
  sessions, ties -> the most recent of them);
- a customer's newer prediction *replaces* the older one's contribution, also across stores:
  ``contribution_updates`` emits a retraction for the old store when the store changed.

Quantities are held as integer micro-units so that adding and subtracting contributions in any
order gives exactly the same totals.

Customer-agnostic variant (``DemandSource.STORE``, the paper's "location/store transaction
funnels"): the funnel is a store's daily sales instead of a customer's baskets.
``lens.stockout.StoreFunnel`` turns the line stream into one basket per store and UTC day
(funnel key ``store_funnel_key(store)``) with the ordinary sessionizer; the same model predicts
that funnel's next day-basket and days_to_next; its predictions (customer_id = the store funnel
key, store_id = the store) and its day baskets as the history flow through exactly this module.
Only the keying changes.
"""

import datetime as dt
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lens import v1
from lens.data.basket import Basket
from lens.errors import ConfigError
from lens.stockout.rhythm import due_days, rhythms
from lens.stream.event_time import from_timestamp, to_datetime

__all__ = [
    "MICRO",
    "Cell",
    "ContributionUpdate",
    "DemandSource",
    "StockoutConfig",
    "contribution",
    "contribution_updates",
    "contributor_key",
    "store_funnel_key",
    "to_micro",
]

MICRO = 1_000_000

# (product_id, ISO day)
Cell = tuple[str, str]


class DemandSource(enum.Enum):
    CUSTOMER = "customer"  # one funnel per customer (the paper's main setting)
    STORE = "store"  # customer-agnostic: one funnel per store, its daily sales


@dataclass(frozen=True)
class StockoutConfig:
    """Attributes:
    n_days: horizon: demand goes to the n_days days after the prediction's as-of day (the
        model's basket: days_to_next < n_days).
    default_quantity: units for a predicted item whose quantity is 0.
    min_shortfall: alert only when demand - resupply exceeds this (units). 0.5: an expected
        shortfall of at least half a unit, one that rounds to a unit missing. Demand is
        expected units, summed over many customers' fractions, and at 0 a cell alerted on a
        fraction of a unit: on the synthetic benchmark's worlds 10-31 (chosen on) 0 found 60
        of 66 planted surges with 62 of 103 alerted cells truly short, 0.5 found 59 with 61 of
        71; on worlds 32-79 (held out) 0.5 found 130 of 144 with 136 of 145 (BENCHMARKS.md).
    source: whose funnels make the demand (DemandSource).
    """

    n_days: int = 7
    default_quantity: float = 1.0
    min_shortfall: float = 0.5
    source: DemandSource = DemandSource.CUSTOMER

    def __post_init__(self) -> None:
        if self.n_days < 1:
            raise ConfigError(f"n_days must be >= 1, got {self.n_days}")
        if self.default_quantity < 0 or self.min_shortfall < 0:
            raise ConfigError("default_quantity and min_shortfall must be >= 0")


def to_micro(quantity: float) -> int:
    return int(round(quantity * MICRO))


def store_funnel_key(store_id: str) -> str:
    """The funnel key of a store in the customer-agnostic variant."""
    return f"store:{store_id}"


def contributor_key(prediction: v1.Prediction, config: StockoutConfig) -> str:
    """Whose contribution a prediction replaces: the customer, or the store funnel."""
    if config.source is DemandSource.STORE:
        return store_funnel_key(prediction.store_id)
    return prediction.customer_id


def contribution(
    prediction: v1.Prediction, config: StockoutConfig, history: Sequence[Basket] = ()
) -> dict[Cell, int]:
    """The cells (product, day) -> micro-units the prediction adds to its store's demand.
    ``history``: the contributor's baskets, oldest first (naive UTC timestamps); those after the
    prediction's as_of are left out, so a prediction means the same whenever it is applied."""
    try:
        as_of = to_datetime(from_timestamp(prediction.as_of)).replace(tzinfo=None)
        as_of.date() + dt.timedelta(days=config.n_days)
    except (OverflowError, ValueError):  # the horizon leaves the calendar: no day to add demand to
        return {}
    cells: dict[Cell, int] = {}

    def add(product: str, day: dt.date, units: float) -> None:
        if not math.isfinite(units):  # a broken model's inf/NaN is no demand (nor a crash)
            return
        micro = to_micro(units)
        if micro > 0 and product:
            cell = (product, day.isoformat())
            cells[cell] = cells.get(cell, 0) + micro

    timed = rhythms([b for b in history if b.timestamp <= as_of])
    for product, rhythm in timed.items():
        for day, probability in due_days(rhythm, as_of.date(), config.n_days).items():
            add(product, day, rhythm.units * probability)
    days = prediction.days_to_next
    if not math.isfinite(days) or days < 0 or days >= config.n_days:
        return cells
    day = as_of.date() + dt.timedelta(days=math.floor(days + 0.5))
    for item in prediction.basket:
        if item.product_id in timed:
            continue  # its rhythm already says when
        units = item.quantity if item.quantity > 0 else config.default_quantity
        add(item.product_id, day, units * min(1.0, max(0.0, item.score)))
    return cells


@dataclass(frozen=True)
class ContributionUpdate:
    """Replace ``contributor``'s cells in ``store_id`` with ``cells`` (empty = retract).

    The unit the funnel-state service (partitioned by customer) sends to the stock-out
    aggregation (partitioned by store): key = store_id.
    """

    store_id: str
    contributor: str
    cells: Mapping[Cell, int]
    as_of: int  # microseconds; the prediction's as_of
    model: tuple[str, int, str]  # (name, version, label)
    # the session the prediction was made from (0: unknown, an event of an older worker)
    session_index: int = 0


def contribution_updates(
    prediction: v1.Prediction,
    config: StockoutConfig,
    *,
    previous_store: str | None,
    history: Sequence[Basket] = (),
) -> list[ContributionUpdate]:
    """The updates one prediction causes: a retraction in ``previous_store`` (the store of the
    contributor's previous prediction, None if none) when it differs, then the new cells
    (``contribution`` with the contributor's ``history``)."""
    key = contributor_key(prediction, config)
    as_of = from_timestamp(prediction.as_of)
    model = (prediction.model.name, prediction.model.version, prediction.model.label)
    session = prediction.session_index
    updates = []
    if previous_store is not None and previous_store != prediction.store_id:
        updates.append(ContributionUpdate(previous_store, key, {}, as_of, model, session))
    cells = contribution(prediction, config, history)
    updates.append(ContributionUpdate(prediction.store_id, key, cells, as_of, model, session))
    return updates
