import numpy as np
import pytest

from lens.errors import DataError
from lens.segments.purity import compare_with_random, purity


def test_purity_is_the_share_of_items_in_their_segments_majority_class():
    # segment 0: a a b -> majority 2; segment 1: b c -> 1; segment 2: c -> 1. (2 + 1 + 1) / 6.
    labels = [0, 0, 0, 1, 1, 2]
    classes = ["a", "a", "b", "b", "c", "c"]
    assert purity(labels, classes) == pytest.approx(4 / 6)
    assert purity([5, 5, 9], ["x", "x", "y"]) == 1.0  # label values need not be 0..K-1


def test_purity_rejects_mismatched_inputs():
    with pytest.raises(DataError, match="as many labels as classes"):
        purity([0, 1], ["a"])
    with pytest.raises(DataError):
        purity([], [])


def test_segments_that_follow_the_classes_beat_both_controls():
    # Three classes, each one tight blob: segments = classes, purity 1; random vectors split the
    # 60 items into 3 k-means segments blind to the classes.
    classes = np.repeat(["a", "b", "c"], 20)
    labels = np.repeat([0, 1, 2], 20)
    report = compare_with_random(labels, classes, k=3, dim=4, controls=3)
    assert report.purity == 1.0 and report.nmi == pytest.approx(1.0)
    assert report.control_purity < 0.7 and report.lift > 1.4
    assert report.shuffled_purity < 0.7  # the same three segments of 20, dealt at random
    assert (report.items, report.classes, report.k, report.controls) == (60, 3, 3, 3)
    assert report.to_dict()["lift"] == pytest.approx(report.lift)
    assert "lift" in report.describe() and "K = 3" in report.describe()


def test_the_control_is_deterministic_and_needs_a_seed():
    labels, classes = np.repeat([0, 1], 10), np.repeat(["a", "b"], 10)
    first = compare_with_random(labels, classes, k=2, dim=3, controls=2)
    assert compare_with_random(labels, classes, k=2, dim=3, controls=2) == first
    with pytest.raises(DataError, match="at least one random control"):
        compare_with_random(labels, classes, k=2, dim=3, controls=0)
