"""Skip-gram item embeddings: pairs from baskets, and products bought together end up close."""

import datetime as dt

import numpy as np
import pytest

from lens.data.basket import Basket
from lens.data.vocabulary import Vocabulary
from lens.errors import DataError
from lens.model.skipgram import SkipGramConfig, basket_pairs, train_item_embeddings

T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.timezone.utc)


def basket(customer: str, n: int, items: tuple[str, ...]) -> Basket:
    return Basket(customer, f"{customer}-{n}", "S1", T0 + dt.timedelta(days=n), items,
                  (1.0,) * len(items), (1.0,) * len(items))


def two_needs(customers: int = 40) -> dict[str, list[Basket]]:
    """Half the customers buy from {a, b, c, d}, the other half from {w, x, y, z}; never mixed."""
    rng = np.random.default_rng(0)
    funnels = {}
    for c in range(customers):
        group = ("a", "b", "c", "d") if c % 2 else ("w", "x", "y", "z")
        funnels[f"c{c}"] = [basket(f"c{c}", n, tuple(rng.choice(group, 3, replace=False)))
                            for n in range(6)]
    return funnels


def test_pairs_are_every_ordered_pair_of_distinct_known_items():
    train = {"c": [basket("c", 0, ("a", "b", "a")), basket("c", 1, ("a",))]}
    vocabulary = Vocabulary.build(train)
    pairs = basket_pairs(train, vocabulary, max_basket_items=32)
    a, b = vocabulary.id_of("a"), vocabulary.id_of("b")
    assert sorted(map(tuple, pairs.tolist())) == [(a, b), (b, a)]  # a one-item basket adds none
    with pytest.raises(DataError, match="two known products"):
        basket_pairs({"c": [basket("c", 0, ("a",))]}, vocabulary, max_basket_items=32)


def test_products_bought_together_are_closer_than_products_never_bought_together():
    train = two_needs()
    vocabulary = Vocabulary.build(train)
    embeddings = train_item_embeddings(
        train, vocabulary, SkipGramConfig(dim=8, epochs=30, batch_size=256, learning_rate=0.05),
        progress=False)
    assert embeddings.shape == (len(vocabulary), 8)
    assert not embeddings[:2].any()  # padding and OOV rows stay zero

    def cosine(p: str, q: str) -> float:
        u, v = embeddings[vocabulary.id_of(p)], embeddings[vocabulary.id_of(q)]
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    within = np.mean([cosine("a", "b"), cosine("c", "d"), cosine("w", "x"), cosine("y", "z")])
    across = np.mean([cosine("a", "w"), cosine("b", "x"), cosine("c", "y"), cosine("d", "z")])
    assert within > across + 0.3
