import numpy as np
import pytest

from lens.data.vocabulary import Vocabulary
from lens.retrain import carry_rows, grown_vocabulary
from tests.unit.model.conftest import basket


def test_the_window_orders_the_vocabulary_and_retired_items_stay_known():
    champion = Vocabulary(["milk", "bread", "jam"])
    window = {
        "a": (basket("a", 0, "kefir bread"), basket("a", 7, "kefir bread milk")),
        "b": (basket("b", 1, "kefir"),),
    }
    grown = grown_vocabulary(champion, window)
    # kefir (3 baskets) > bread (2) > milk (1) by count in the window; jam is not in it any more.
    assert grown.items == ("kefir", "bread", "milk", "jam")


def test_known_keys_keep_their_rows_and_new_keys_their_initialisation():
    learned = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # rows of a, b, c
    initial = np.full((3, 2), -1.0)  # fresh rows for c, new, a
    out = carry_rows(learned, ["a", "b", "c"], initial, ["c", "new", "a"])
    np.testing.assert_array_equal(out, [[3.0, 3.0], [-1.0, -1.0], [1.0, 1.0]])
    assert (initial == -1.0).all()  # the initialisation is not modified in place


def test_rows_can_be_columns_of_an_output_layer():
    kernel = np.array([[10.0, 20.0], [11.0, 21.0]])  # [P=2, C=2]: columns of classes x, y
    initial = np.zeros((2, 3))  # classes y, z, x
    out = carry_rows(kernel, ["x", "y"], initial, ["y", "z", "x"], axis=1)
    np.testing.assert_array_equal(out, [[20.0, 0.0, 10.0], [21.0, 0.0, 11.0]])


def test_keys_must_match_the_arrays():
    with pytest.raises(ValueError, match="one slice per key"):
        carry_rows(np.zeros((2, 1)), ["a"], np.zeros((1, 1)), ["a"])
