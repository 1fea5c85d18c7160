"""The unit of purchase history every part of LENS shares: one customer's basket (session)."""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Basket", "Funnels"]


@dataclass(frozen=True, slots=True)
class Basket:
    """One closed basket: the products a customer bought in one transaction.

    ``items`` holds distinct product ids in first-scanned order; ``quantities[i]`` and
    ``amounts[i]`` are the summed units and sales value of ``items[i]``. Ids stay strings exactly
    as in the source (Ta-Feng ids have leading zeros).
    """

    customer_id: str
    basket_id: str
    store_id: str
    timestamp: dt.datetime
    items: tuple[str, ...]
    quantities: tuple[float, ...]
    amounts: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.items) == len(self.quantities) == len(self.amounts)):
            raise ValueError("items, quantities and amounts must have the same length")


# customer id -> that customer's baskets in chronological order.
Funnels = Mapping[str, Sequence[Basket]]
