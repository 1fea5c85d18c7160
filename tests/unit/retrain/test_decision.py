import math

from lens.retrain import decide


def test_a_challenger_within_the_margin_is_published():
    assert decide("recall@10", 0.295, 0.30, margin=0.01).publish
    assert decide("recall@10", 0.31, 0.30, margin=0.0).publish


def test_a_challenger_worse_than_the_margin_is_rejected_with_both_values():
    decision = decide("recall@10", 0.28, 0.30, margin=0.01)
    assert not decision.publish
    assert "0.2800" in decision.reason and "0.3000" in decision.reason


def test_an_unscored_challenger_is_rejected_and_an_unscored_champion_replaced():
    assert not decide("recall@10", math.nan, 0.3, margin=0.0).publish
    assert decide("recall@10", 0.1, math.nan, margin=0.0).publish
