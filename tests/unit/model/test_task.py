import dataclasses
import math

import numpy as np
import pytest

from lens.model.config import CONFIGS
from lens.model.task import LensTask


def outputs(n=2, d=3, c=4):
    return {
        "logits": np.zeros((n, d, c), np.float32),  # uniform: -log p = log 4 for every token
        "classes": np.array([[2, 3, 0], [2, 0, 0]], np.int32),
        "token_weight": np.array([[1, 1, 1], [1, 1, 0]], np.float32),  # 5 trained tokens
        "quantities": np.zeros((n, d), np.float32),
        "target_quantities": np.array([[1.0, 3.0, 0.0], [2.0, 0.0, 0.0]], np.float32),
        "time": np.array([0.5, 1.0], np.float32),
        "target_time": np.array([1.0, 0.0], np.float32),
    }


@pytest.mark.parametrize("time_loss, expected_time", [("mae", (0.5 + 1.0) / 2), ("mse", (0.25 + 1.0) / 2)])
def test_losses_by_hand(time_loss, expected_time):
    config = dataclasses.replace(
        CONFIGS["tiny"], time_loss=time_loss, quantity_loss_weight=0.1, time_loss_weight=2.0
    )
    losses = {k: float(v) for k, v in LensTask(config)(outputs()).items()}
    assert losses["basket"] == pytest.approx(math.log(4), rel=1e-5)
    # Item tokens only (class > 0): (1 + 9 + 4) / 3; end-of-basket tokens carry no quantity.
    assert losses["quantity"] == pytest.approx(14 / 3, rel=1e-5)
    assert losses["time"] == pytest.approx(expected_time, rel=1e-5)
    assert losses["loss"] == pytest.approx(math.log(4) + 0.1 * 14 / 3 + 2.0 * expected_time, rel=1e-5)


def test_an_empty_batch_has_zero_loss_not_nan():
    empty = {k: v[:0] for k, v in outputs().items()}
    losses = LensTask(CONFIGS["tiny"])(empty)
    assert all(np.isfinite(float(v)) for v in losses.values())


def test_basket_loss_is_the_nll_of_mixture_log_probabilities():
    # The repeat path hands the task normalized log-probabilities as logits.
    probs = np.array([0.5, 0.25, 0.125, 0.125], np.float32)  # classes 0..3
    batch = outputs() | {"logits": np.broadcast_to(np.log(probs), (2, 3, 4)).copy()}
    losses = LensTask(CONFIGS["tiny"])(batch)
    # Trained tokens: 2, 3, 0 (first target) and 2, 0 (second): -(3 log 1/8 + 2 log 1/2) / 5.
    expected = -(3 * np.log(0.125) + 2 * np.log(0.5)) / 5
    assert float(losses["basket"]) == pytest.approx(expected, rel=1e-5)
