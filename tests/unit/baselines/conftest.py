"""Factory fixtures for the baseline tests: tiny hand-made funnels."""

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import pytest

from lens.data.basket import Basket, Funnels

START = dt.datetime(2000, 11, 1)

BasketSpec = Sequence[str] | tuple[int, Sequence[str]]
"""A basket as its items (one day after the previous basket) or as (day offset, items)."""


def make_funnels(spec: Mapping[str, Sequence[BasketSpec]]) -> Funnels:
    """Funnels from ``{customer: [basket, ...]}``; days count from 2000-11-01."""
    funnels: dict[str, list[Basket]] = {}
    for customer, baskets in spec.items():
        out = []
        for pos, basket in enumerate(baskets):
            if isinstance(basket, tuple):
                day, items = basket
            else:
                day, items = pos, basket
            items = tuple(items)
            out.append(
                Basket(
                    customer_id=customer,
                    basket_id=f"{customer}-{pos}",
                    store_id="s1",
                    timestamp=START + dt.timedelta(days=day),
                    items=items,
                    quantities=tuple(1.0 for _ in items),
                    amounts=tuple(10.0 for _ in items),
                )
            )
        funnels[customer] = out
    return funnels


@pytest.fixture
def funnels() -> Callable[[Mapping[str, Sequence[BasketSpec]]], Funnels]:
    return make_funnels
