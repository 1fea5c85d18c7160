import pytest

from lens.anomaly.distance import basket_distance, f1_score


def test_one_minus_f1_by_hand():
    # hits = {a, b}: F1 = 2 * 2 / (4 + 3) = 4/7, so dA = 3/7.
    assert basket_distance(["a", "b", "c", "d"], ["a", "b", "e"]) == pytest.approx(3 / 7)
    assert f1_score(["a", "b", "c", "d"], ["a", "b", "e"]) == pytest.approx(4 / 7)


def test_edges():
    assert basket_distance(["a", "b"], ["b", "a"]) == 0.0
    assert basket_distance(["a"], ["b"]) == 1.0
    assert basket_distance([], []) == 0.0
    assert basket_distance(["a"], []) == 1.0
    assert basket_distance(["a", "a", "b"], ["a", "b", "b"]) == 0.0  # sets: duplicates ignored
