import pytest

from lens.anomaly.distance import basket_distance, f1_score, miss_rate, prediction_distance


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


def test_miss_rate_counts_observed_products_the_model_did_not_expect():
    assert miss_rate(["a", "b", "c"], ["a", "x", "y", "y"]) == pytest.approx(2 / 3)
    assert miss_rate([], ["a"]) == 1.0
    assert miss_rate(["a"], []) == 0.0


def test_prediction_distance_averages_the_basket_and_ranking_views():
    # basket {a}, observed {a, b}: 1 - F1 = 1 - 2/3; b is in the ranking, so nothing is missed
    assert prediction_distance(["a"], ["b", "c"], ["a", "b"]) == pytest.approx(0.5 * (1 / 3))
    # a basket of products the model did not rank at all is as far as it gets
    assert prediction_distance(["a"], ["b"], ["x", "y"]) == 1.0
    assert prediction_distance(["a"], ["b"], ["a"]) == 0.0
