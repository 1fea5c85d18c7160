import numpy as np
import pytest

from lens.anomaly.robust import RobustWindow, leave_one_out_scores, mad, median, robust_z


def test_median_and_mad_by_hand():
    values = [0.2, 0.4, 0.6, 0.8, 1.0]
    assert median(values) == 0.6
    assert mad(values) == pytest.approx(0.2)  # |deviations| = 0.4, 0.2, 0, 0.2, 0.4
    assert median([1.0, 3.0]) == 2.0


def test_robust_z_by_hand():
    # median 0.6, MAD 0.2, scale 1.4826 * 0.2 = 0.29652; (1.0 - 0.6) / 0.29652 = 1.34898...
    assert robust_z(1.0, [0.2, 0.4, 0.6, 0.8, 1.0], min_scale=0.05) == pytest.approx(0.4 / 0.29652)
    # all equal: MAD 0, the floor 0.05 is the scale: (0.8 - 0.5) / 0.05 = 6
    assert robust_z(0.8, [0.5, 0.5, 0.5], min_scale=0.05) == pytest.approx(6.0)


def test_window_keeps_the_last_values():
    window = RobustWindow(3)
    for v in (1.0, 2.0, 3.0, 4.0):
        window.add(v)
    assert window.values() == [2.0, 3.0, 4.0]
    # median 3, MAD 1: (5 - 3) / 1.4826
    assert window.score(5.0, min_scale=0.01) == pytest.approx(2 / 1.4826)
    assert RobustWindow.from_values(3, window.values()).values() == window.values()


def test_leave_one_out_by_hand_and_equal_to_robust_z():
    values = np.array([0.1, 0.2, 0.3, 0.9])
    scores = leave_one_out_scores(values, min_scale=0.05)
    # 0.9 against [0.1, 0.2, 0.3]: median 0.2, MAD 0.1, z = 0.7 / 0.14826
    assert scores[3] == pytest.approx(0.7 / 0.14826)
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 7, 30):
        values = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, rng.random()], size=n)
        loo = leave_one_out_scores(values, min_scale=0.05)
        by_hand = [robust_z(values[i], list(np.delete(values, i)), min_scale=0.05) for i in range(n)]
        assert loo.tolist() == pytest.approx(by_hand, abs=1e-12)
