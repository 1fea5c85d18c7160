import pytest

from lens.errors import DataError
from lens.retrain import recent_holdout, recent_window
from tests.unit.model.conftest import basket


def funnels():
    return {
        "a": (basket("a", 0, "milk"), basket("a", 10, "bread"), basket("a", 19, "milk jam")),
        "b": (basket("b", 2, "tea"),),
        "c": (basket("c", 12, "tea"), basket("c", 14, "jam")),
        "d": (basket("d", 16, "eggs"), basket("d", 20, "eggs milk")),
    }


def test_the_window_counts_back_from_the_newest_basket():
    window = recent_window(funnels(), days=10)  # day 20 is the newest: keep days >= 10
    assert {c: [b.timestamp.day - 1 for b in f] for c, f in window.items()} == {
        "a": [10, 19], "c": [12, 14], "d": [16, 20],
    }
    assert recent_window(funnels(), None)["b"]  # no window: everything


def test_the_last_basket_of_recently_active_customers_is_held_out():
    split = recent_holdout(recent_window(funnels(), days=10), eval_days=3)
    # a (day 19) and d (day 20) shopped in the last 3 days after an earlier basket; c did not.
    assert list(split.test) == ["a", "d"]
    assert split.test["a"].target.items == ("milk", "jam")
    assert [b.items for b in split.test["a"].history] == [("bread",)]
    assert [b.items for b in split.train["a"]] == [("bread",)]  # targets never train
    assert len(split.train["c"]) == 2 and not split.valid


def test_no_recent_customer_is_a_clear_error():
    with pytest.raises(DataError, match="--eval-days"):
        recent_holdout({"b": funnels()["b"]}, eval_days=3)
