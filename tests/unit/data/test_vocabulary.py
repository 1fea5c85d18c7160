"""Product id <-> int: reserved padding and OOV ids, min count, training data only."""

import datetime as dt

import pytest

from lens.data.basket import Basket
from lens.data.vocabulary import OOV_ID, PAD_ID, Vocabulary


def funnel(*baskets: str) -> list[Basket]:
    """One basket per string, one item per character."""
    return [
        Basket(
            customer_id="c",
            basket_id=str(n),
            store_id="1",
            timestamp=dt.datetime(2024, 1, 1 + n),
            items=tuple(items),
            quantities=(1.0,) * len(items),
            amounts=(1.0,) * len(items),
        )
        for n, items in enumerate(baskets)
    ]


TRAIN = {"c": funnel("ab", "ac", "a"), "d": funnel("bd")}  # counts: a 3, b 2, c 1, d 1


def test_ids_follow_count_then_product_id_after_the_reserved_ones():
    vocabulary = Vocabulary.build(TRAIN)
    assert (PAD_ID, OOV_ID) == (0, 1)
    assert vocabulary.items == ("a", "b", "c", "d")  # c and d tie on 1: id order decides
    assert len(vocabulary) == 6
    assert vocabulary.encode(["a", "d", "new"]).tolist() == [2, 5, OOV_ID]
    assert vocabulary.decode([2, PAD_ID, OOV_ID, 5]) == ["a", "d"]


def test_rare_items_map_to_oov():
    vocabulary = Vocabulary.build(TRAIN, min_count=2)
    assert vocabulary.items == ("a", "b")
    assert vocabulary.id_of("c") == OOV_ID and "c" not in vocabulary


def test_round_trips_through_a_dict():
    vocabulary = Vocabulary.build(TRAIN, min_count=2)
    again = Vocabulary.from_dict(vocabulary.to_dict())
    assert again.items == vocabulary.items and again.min_count == 2


def test_min_count_below_one_is_refused():
    with pytest.raises(ValueError):
        Vocabulary.build(TRAIN, min_count=0)
