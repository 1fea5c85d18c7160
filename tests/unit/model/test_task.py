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
