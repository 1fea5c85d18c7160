"""Tiny hand-built funnels and a tiny model for the LENS model tests."""

import datetime as dt

import numpy as np
import pytest

from lens.data.basket import Basket
from lens.data.vocabulary import Vocabulary
from lens.model.config import CONFIGS
from lens.model.dataset import UserIndex


def basket(customer: str, day: int, items: str, qty: float = 1.0) -> Basket:
    names = tuple(items.split())
    return Basket(
        customer_id=customer,
        basket_id=f"{customer}-{day}",
        store_id="1",
        timestamp=dt.datetime(2024, 1, 1) + dt.timedelta(days=day),
        items=names,
        quantities=tuple(qty for _ in names),
        amounts=tuple(2.0 for _ in names),
    )


def make_funnels():
    """Four customers: 3, 1, 4 and 2 baskets. 'milk' is the most popular item."""
    return {
        "a": (basket("a", 0, "milk bread"), basket("a", 7, "milk eggs"), basket("a", 14, "milk bread eggs")),
        "b": (basket("b", 1, "tea"),),
        "c": (
            basket("c", 0, "milk tea"),
            basket("c", 3, "bread jam", qty=2.0),
            basket("c", 6, "milk jam"),
            basket("c", 9, "milk bread tea jam"),
        ),
        "d": (basket("d", 2, "eggs"), basket("d", 5, "milk eggs")),
    }


@pytest.fixture
def funnels():
    return make_funnels()


@pytest.fixture
def config():
    return CONFIGS["tiny"]


@pytest.fixture
def vocabulary(funnels):
    return Vocabulary.build(funnels)


@pytest.fixture
def users(funnels):
    return UserIndex(sorted(funnels))


@pytest.fixture
def model(config, vocabulary, users):
    import keras

    from lens.model.lens_model import LensModel

    keras.utils.set_random_seed(0)
    model = LensModel(config, len(vocabulary), len(users))
    model.build_for()
    return model


def first_batch(table, batch_size=16):
    from lens.model.dataset import make_dataset

    return next(iter(make_dataset(table, batch_size=batch_size, boundaries=())))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
