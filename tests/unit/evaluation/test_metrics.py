"""Metrics on hand-computed cases; the vectorized code against a plain one-customer-at-a-time
scorer on random data."""

import math

import numpy as np
import pytest

from lens.evaluation.metrics import (
    basket_metrics,
    judge,
    ndcg_at_k,
    phr_at_k,
    ranking_metrics,
    recall_at_k,
)
from tests.unit.evaluation.helpers import reference_scores

LOG3 = math.log2(3)


def test_recall_ndcg_phr_on_a_hit_matrix():
    hits = np.array([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
    sizes = np.array([3, 1])
    # Row 0: hits at ranks 1 and 3 of |T| = 3.
    #   recall = 2/3; DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.1309
    assert recall_at_k(hits, sizes, 4) == pytest.approx([2 / 3, 0.0])
    assert ndcg_at_k(hits, sizes, 4) == pytest.approx([1.5 / (1.5 + 1 / LOG3), 0.0])
    assert phr_at_k(hits, 4).tolist() == [1.0, 0.0]
    # At k = 2 only rank 1 counts: recall 1/3; IDCG over min(3, 2) = 2 positions = 1 + 1/log2(3).
    assert recall_at_k(hits, sizes, 2) == pytest.approx([1 / 3, 0.0])
    assert ndcg_at_k(hits, sizes, 2) == pytest.approx([1 / (1 + 1 / LOG3), 0.0])


def test_ndcg_ideal_uses_min_of_truth_size_and_k():
    # 12 true items, the top 10 all right: a perfect top 10, so NDCG@10 = 1 (not 0.94 as with
    # an IDCG over all 12 positions); recall@10 = 10/12.
    hits = np.ones((1, 10), dtype=bool)
    assert ndcg_at_k(hits, np.array([12]), 10) == pytest.approx([1.0])
    assert recall_at_k(hits, np.array([12]), 10) == pytest.approx([10 / 12])


def test_repeat_and_explore_parts():
    relevance = judge(
        truth=[{"a", "c", "d"}, {"e"}],
        ranked=[["c", "a", "x"], ["q", "e"]],
        baskets=[[], []],
        history=[{"a", "b", "z"}, {"q"}],
    )
    m = ranking_metrics(relevance, ks=(10,))
    # Customer 1: T_repeat = {a} (a at rank 2), T_explore = {c, d} (c at rank 1).
    # Customer 2: no repeat part (q was bought before but is not in T); T_explore = {e} at rank 2.
    assert relevance.repeat_sizes.tolist() == [1, 0]
    assert m["recall@10"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["recall@10:repeat"] == pytest.approx(1.0)  # customer 1 only
    assert m["recall@10:explore"] == pytest.approx((1 / 2 + 1) / 2)
    # ndcg:repeat, customer 1: DCG = 1/log2(3), IDCG over 1 position = 1.
    assert m["ndcg@10:repeat"] == pytest.approx(1 / LOG3)
    # ndcg:explore: customer 1 DCG 1 / IDCG (1 + 1/log2(3)); customer 2 DCG 1/log2(3) / IDCG 1.
    assert m["ndcg@10:explore"] == pytest.approx((1 / (1 + 1 / LOG3) + 1 / LOG3) / 2)
    # ndcg overall: customer 1 (1 + 1/log2(3)) / (1 + 1/log2(3) + 1/2); customer 2 1/log2(3).
    assert m["ndcg@10"] == pytest.approx(((1 + 1 / LOG3) / (1.5 + 1 / LOG3) + 1 / LOG3) / 2)
    assert m["phr@10:repeat"] == m["phr@10:explore"] == 1.0


def test_a_part_nobody_has_is_nan():
    relevance = judge(truth=[{"a"}], ranked=[["a"]], baskets=[["a"]], history=[set()])
    m = ranking_metrics(relevance, ks=(10,))
    assert math.isnan(m["recall@10:repeat"]) and m["recall@10:explore"] == 1.0


def test_basket_metrics_in_both_conventions():
    relevance = judge(
        truth=[{"a", "b", "c", "d"}, {"e"}, {"f", "g"}],
        ranked=[[], [], []],
        baskets=[["a", "x"], [], ["f", "g", "h", "i"]],
        history=[set(), set(), set()],
    )
    m = basket_metrics(relevance)
    # Per customer (P, R, F1): (1/2, 1/4, 1/3), (0, 0, 0) for the empty basket, (1/2, 1, 2/3).
    assert m["basket:precision"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert m["basket:recall"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert m["basket:f1"] == pytest.approx((1 / 3 + 0 + 2 / 3) / 3)
    # Paper table: R = 5/12, "precision" = 2 of 3 customers hit = 2/3, F1 = 2RP / (R + P) = 0.5128.
    assert m["paper:recall"] == pytest.approx(5 / 12)
    assert m["paper:precision"] == pytest.approx(2 / 3)
    assert m["paper:f1"] == pytest.approx(2 * (5 / 12) * (2 / 3) / (5 / 12 + 2 / 3))


def test_repeated_items_count_once_and_baskets_stop_at_ten():
    relevance = judge(
        truth=[{"a", "b"}, set("abcdefghijkl")],
        ranked=[["a", "a", "b"], []],
        baskets=[["a", "a"], list("abcdefghijkl")],
        history=[set(), set()],
    )
    assert ranking_metrics(relevance, ks=(10,))["recall@10"] == pytest.approx((1.0 + 0.0) / 2)
    assert relevance.basket_sizes.tolist() == [1, 10]
    # Customer 2: 10 of 12 true items in a basket cut to 10 -> R = 10/12, P = 1.
    assert basket_metrics(relevance)["basket:recall"] == pytest.approx((0.5 + 10 / 12) / 2)


def test_an_empty_true_basket_is_refused():
    with pytest.raises(ValueError, match="non-empty true basket"):
        judge(truth=[set()], ranked=[["a"]], baskets=[["a"]], history=[set()])


def test_vectorized_metrics_equal_a_plain_scorer_on_random_predictions():
    rng = np.random.default_rng(7)
    catalogue = [f"i{n}" for n in range(60)]
    rows = []
    for _ in range(300):
        truth = set(rng.choice(catalogue, size=rng.integers(1, 15), replace=False))
        ranked = list(rng.choice(catalogue, size=rng.integers(0, 25)))  # may repeat items
        basket = list(rng.choice(catalogue, size=rng.integers(0, 13), replace=False))
        history = set(rng.choice(catalogue, size=rng.integers(0, 20), replace=False))
        rows.append((truth, ranked, basket, history))
    truth, ranked, baskets, history = zip(*rows, strict=True)
    relevance = judge(truth=truth, ranked=ranked, baskets=baskets, history=history)
    got = ranking_metrics(relevance) | basket_metrics(relevance)
    expected = reference_scores(rows)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, nan_ok=True), name
