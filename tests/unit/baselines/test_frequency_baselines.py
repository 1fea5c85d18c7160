"""GlobalTop, PersonalTop and PersonalThenGlobal on hand-made funnels."""

import pytest

from lens.baselines import GlobalTop, PersonalThenGlobal, PersonalTop
from lens.baselines._support import basket_size
from lens.errors import ConfigError


def test_basket_size_is_the_median_rounded_half_up_and_clipped():
    assert basket_size([1, 2]) == 2  # median 1.5 -> 2
    assert basket_size([1, 2, 2, 7]) == 2
    assert basket_size([30, 40]) == 10
    assert basket_size([]) == 1


def test_global_top_ranks_by_baskets_containing_the_item(funnels):
    train = funnels(
        {
            "c1": [["a", "b"], ["a", "c"], ["a"]],  # a: 3 baskets
            "c2": [["b", "c"], ["c", "d"]],  # b: 2, c: 3, d: 1
        }
    )
    model = GlobalTop().fit(train)
    # a and c tie at 3 baskets: the smaller id first.
    answer = model.predict(funnels({"q": [["x", "y"], ["x"], ["z", "y"]]}), k=10)["q"]
    assert list(answer.items) == ["a", "c", "b", "d"]
    assert list(answer.scores) == [3, 3, 2, 1]
    # q's basket sizes 2, 1, 2 -> median 2.
    assert list(answer.basket) == ["a", "c"]


def test_global_top_without_history_uses_the_training_median_size(funnels):
    train = funnels({"c1": [["a", "b", "c"], ["a", "b", "c"]], "c2": [["a"]]})  # sizes 3, 3, 1
    answer = GlobalTop().fit(train).predict({"q": []}, k=10)["q"]
    assert list(answer.basket) == ["a", "b", "c"]


def test_global_top_ranks_at_least_twenty(funnels):
    train = funnels({"c1": [[f"i{n:02d}" for n in range(30)]]})
    model = GlobalTop().fit(train)
    assert len(model.predict(funnels({"q": [["a"]]}), k=5)["q"].items) == 20
    assert len(model.predict(funnels({"q": [["a"]]}), k=25)["q"].items) == 25


def test_personal_top_ranks_by_frequency_then_recency(funnels):
    history = funnels(
        {
            "q": [
                ["a", "b", "c"],
                ["b", "d"],
                ["c", "e", "a"],  # a, b, c: 2 baskets each; a and c last bought here
                ["f"],
            ]
        }
    )
    answer = PersonalTop().fit({}).predict(history, k=10)["q"]
    # count 2: a, c (last in basket 2; c scanned before a there), then b (last in basket 1);
    # count 1: f (basket 3), d (basket 1) and e (basket 2) -> f, e, d.
    assert list(answer.items) == ["c", "a", "b", "f", "e", "d"]
    assert list(answer.scores) == [2, 2, 2, 1, 1, 1]
    # basket sizes 3, 2, 3, 1 -> median 2.5 -> 3.
    assert list(answer.basket) == ["c", "a", "b"]


def test_personal_top_pads_with_nothing(funnels):
    answers = PersonalTop().fit({}).predict(funnels({"q": [["a", "b"]], "r": []}), k=20)
    assert list(answers["q"].items) == ["a", "b"]
    assert list(answers["r"].items) == [] and list(answers["r"].basket) == []


def test_personal_then_global_fills_from_global_without_repeats(funnels):
    train = funnels({"c1": [["g1", "a"], ["g1", "g2"]], "c2": [["g1", "g2", "g3"]]})
    # training baskets: 3; g1 in 3, g2 in 2, a 1, g3 1
    model = PersonalThenGlobal().fit(train)
    answer = model.predict(funnels({"q": [["x", "g2"], ["x", "y", "z", "w"]]}), k=20)["q"]
    # x twice; y, z, w once in the last basket (scan order), g2 once earlier; then g1, a, g3
    # (a and g3 tie at one basket: smaller id first).
    assert list(answer.items) == ["x", "y", "z", "w", "g2", "g1", "a", "g3"]
    assert list(answer.scores)[:5] == [2, 1, 1, 1, 1]
    assert answer.scores[5:] == pytest.approx([3 / 4, 1 / 4, 1 / 4])
    assert list(answer.basket) == ["x", "y", "z"]  # sizes 2, 4 -> median 3


def test_personal_then_global_fills_the_basket_from_global(funnels):
    train = funnels({"c1": [["g1", "g2", "g3"]]})
    model = PersonalThenGlobal().fit(train)
    answer = model.predict(funnels({"q": [["x", "y", "z"]], "r": []}), k=10)
    assert list(answer["q"].basket) == ["x", "y", "z"]
    assert list(answer["r"].basket) == ["g1", "g2", "g3"]  # training median size 3


def test_k_below_one_is_refused(funnels):
    with pytest.raises(ConfigError, match="k must be >= 1"):
        GlobalTop().fit(funnels({"c": [["a"]]})).predict(funnels({"q": [["a"]]}), k=0)
