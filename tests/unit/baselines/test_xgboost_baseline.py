"""The XGBoost classifier baseline: features by hand, the F1 threshold, and a learnable signal."""

import numpy as np
import pytest

from lens.baselines import XGBoostBaseline, XGBoostSettings
from lens.baselines._support import ItemIndex, flatten
from lens.baselines.xgboost_baseline import (
    FEATURES,
    best_threshold,
    candidate_features,
    item_stats,
)
from lens.errors import ConfigError


def test_candidate_features_by_hand(funnels):
    history = funnels({"q": [(0, ["a", "b"]), (4, ["a"]), (10, ["c"])]})
    index = ItemIndex.of_funnels(history)
    flat = flatten(history, index)
    stats = item_stats(flat)
    s = XGBoostSettings(n_popular=0, decay=0.5)
    cust, item, x = candidate_features(flat, stats, s)
    assert x.shape == (3, len(FEATURES))
    row = {index.ids([i])[0]: dict(zip(FEATURES, x[r])) for r, i in enumerate(item)}
    a = row["a"]
    assert a["count"] == 2 and a["share"] == pytest.approx(2 / 3)
    assert a["decayed_count"] == pytest.approx(0.25 + 0.5)  # baskets 0 and 1 of 3
    assert a["baskets_since_last"] == 1 and a["days_since_last"] == 6
    assert a["item_gap_days"] == 4 and a["days_since_last_over_gap"] == pytest.approx(1.5)
    assert a["item_repeat_rate"] == 1.0
    assert row["b"]["days_since_last"] == 10 and np.isnan(row["b"]["item_gap_days"])
    assert row["c"]["baskets_since_last"] == 0
    assert a["customer_baskets"] == 3 and a["customer_mean_basket"] == pytest.approx(4 / 3)
    assert a["customer_distinct_items"] == 3
    assert a["customer_repeat_ratio"] == pytest.approx(1 / 4)  # 4 lines, 3 distinct
    assert a["customer_gap_days"] == 5


def test_popular_candidates_are_added_with_missing_history_features(funnels):
    train = funnels({"c1": [["p", "x"]], "c2": [["p"]], "q": [["a"]]})
    index = ItemIndex.of_funnels(train)
    flat = flatten(train, index)
    stats = item_stats(flat)
    cust, item, x = candidate_features(flat, stats, XGBoostSettings(n_popular=1))
    q_rows = np.flatnonzero(cust == flat.customers.index("q"))
    assert sorted(index.ids(item[q_rows])) == ["a", "p"]
    p_row = dict(zip(FEATURES, x[q_rows[index.ids(item[q_rows]).index("p")]]))
    assert p_row["in_history"] == 0 and np.isnan(p_row["baskets_since_last"])
    assert p_row["item_popularity"] == pytest.approx(2 / 3)


def test_best_threshold_maximises_mean_f1_by_hand():
    # customer 0: candidates 0.9 (hit), 0.6 (miss), 0.2 (hit); label basket of 2
    # customer 1: candidates 0.8 (miss), 0.3 (hit); label basket of 1
    probs = np.array([0.9, 0.6, 0.2, 0.8, 0.3])
    hits = np.array([1, 0, 1, 0, 1.0])
    cust = np.array([0, 0, 0, 1, 1])
    # t in (0.8, 0.9]: baskets {0.9} / {0.8}: F1 2*1/(1+2)=2/3 and 0 -> 1/3
    # t in (0.3, 0.6]:  {0.9, 0.6} / {0.8}: 2/4 and 0 -> 1/4
    # t in (0.2, 0.3]:  {0.9, 0.6} / {0.8, 0.3}: 1/2 and 2/3 -> 7/12 (best)
    # t <= 0.2: {all 3} / {0.8, 0.3}: 4/5 and 2/3 -> 11/15 (best of all)
    t, f1 = best_threshold(probs, hits, cust, np.array([2.0, 1.0]))
    assert t <= 0.2 and f1 == pytest.approx(11 / 15)


def synthetic_funnels(funnels, n_customers, seed):
    """Half the customers buy milk in every basket; everyone buys random noise."""
    rng = np.random.default_rng(seed)
    spec = {}
    for c in range(n_customers):
        baskets = []
        for _ in range(rng.integers(3, 6)):
            noise = list(rng.choice([f"n{i}" for i in range(15)], size=2, replace=False))
            baskets.append((["milk"] if c % 2 == 0 else []) + noise)
        spec[f"c{c}"] = baskets
    return funnels(spec)


def test_learns_who_rebuys_milk(funnels):
    s = XGBoostSettings(n_estimators=30, max_depth=3, n_popular=5)
    model = XGBoostBaseline(s).fit(synthetic_funnels(funnels, 80, seed=1))
    assert 0.0 < model.threshold < 1.0 and model.train_f1 > 0.0
    test = synthetic_funnels(funnels, 20, seed=2)
    answers = model.predict({c: b[:-1] for c, b in test.items()}, k=20)
    for c, answer in answers.items():
        assert 1 <= len(answer.basket) <= 10
        assert list(answer.scores) == sorted(answer.scores, reverse=True)
        if int(c[1:]) % 2 == 0:
            assert answer.items[0] == "milk" and "milk" in answer.basket
        else:
            assert "milk" not in answer.basket


def test_needs_customers_with_two_baskets(funnels):
    with pytest.raises(ConfigError, match="at least two baskets"):
        XGBoostBaseline().fit(funnels({"c": [["a"]]}))


def test_predict_before_fit_says_what_to_do():
    with pytest.raises(ConfigError, match="fit"):
        XGBoostBaseline().predict({}, k=10)
