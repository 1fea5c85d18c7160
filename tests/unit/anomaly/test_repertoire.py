import pytest

from lens.anomaly.repertoire import novelty


def test_novelty_is_the_share_of_the_window_products_never_bought_before_it():
    sessions = [("milk", "bread"), ("milk", "eggs"), ("bread",), ("milk", "beer"), ("beer", "chips")]
    # window of 2: {milk, beer, chips}; before it {milk, bread, eggs}: beer and chips are new
    assert novelty(sessions, window=2, established=3) == pytest.approx(2 / 3)
    # a product new in the window counts once, however often it is bought there
    assert novelty([("a",), ("b",), ("b",)], window=2, established=1) == pytest.approx(1.0)
    assert novelty([("a",), ("a",), ("a",)], window=2, established=1) == 0.0


def test_too_short_a_history_has_no_novelty_and_an_empty_window_none_to_show():
    assert novelty([("a",), ("b",), ("c",)], window=2, established=2) is None
    assert novelty([("a",), ("a",), (), ()], window=2, established=2) == 0.0
