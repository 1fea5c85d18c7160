"""Per-session features: calendar encodings, gaps between sessions, basket totals."""

import datetime as dt

import numpy as np
import pytest

from lens.data.basket import Basket
from lens.data.features import FEATURE_NAMES, feature_row, funnel_features, session_features


def basket(when: dt.datetime, items: dict[str, tuple[float, float]]) -> Basket:
    """``items``: product -> (quantity, amount)."""
    return Basket(
        customer_id="c",
        basket_id=when.isoformat(),
        store_id="1",
        timestamp=when,
        items=tuple(items),
        quantities=tuple(q for q, _ in items.values()),
        amounts=tuple(a for _, a in items.values()),
    )


FUNNEL = [
    basket(dt.datetime(2000, 12, 31, 12), {"a": (2.0, 30.0), "b": (1.0, 5.0)}),  # a Sunday
    basket(dt.datetime(2001, 1, 1), {"a": (1.0, 15.0)}),  # Monday, 12 hours later
    basket(dt.datetime(2001, 2, 14), {"c": (3.0, 9.0)}),  # Wednesday, 44 days later
]


def test_calendar_gaps_and_totals_of_one_funnel():
    f = session_features(FUNNEL)
    assert f.day_of_week.tolist() == [6, 0, 2]
    assert f.day_of_month.tolist() == [31, 1, 14] and f.month.tolist() == [12, 1, 2]
    assert f.days_in_month.tolist() == [31, 31, 28]  # 2001 is no leap year
    assert f.days_since_previous.tolist() == [0.0, 0.5, 44.0]
    assert f.has_previous.tolist() == [False, True, True]
    assert f.basket_size.tolist() == [2, 1, 1]
    assert f.total_quantity.tolist() == [3.0, 1.0, 3.0]
    assert f.total_amount.tolist() == [35.0, 15.0, 9.0]


def test_cyclical_encodings_put_neighbours_on_the_circle():
    cyc = session_features(FUNNEL).cyclical()  # [3, 6]
    # Monday = phase 0 -> (sin, cos) = (0, 1); Sunday = phase 6/7 -> sin(2*pi*6/7) = -0.7818.
    assert cyc[1, :2] == pytest.approx([0.0, 1.0], abs=1e-6)
    assert cyc[0, :2] == pytest.approx([np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7)])
    # Day 1 of a month and January are phase 0 as well.
    assert cyc[1, 2:] == pytest.approx([0.0, 1.0, 0.0, 1.0], abs=1e-6)


def test_matrix_columns_follow_feature_names():
    matrix = session_features(FUNNEL).as_matrix()
    assert matrix.shape == (3, len(FEATURE_NAMES)) and matrix.dtype == np.float32
    assert matrix[:, FEATURE_NAMES.index("days_since_previous")].tolist() == [0.0, 0.5, 44.0]
    assert matrix[:, FEATURE_NAMES.index("total_amount")].tolist() == [35.0, 15.0, 9.0]


def test_many_funnels_at_once_equal_one_by_one():
    funnels = {"x": FUNNEL, "y": FUNNEL[1:], "z": []}
    together = funnel_features(funnels)
    for customer, baskets in funnels.items():
        np.testing.assert_array_equal(
            together[customer].as_matrix(), session_features(baskets).as_matrix()
        )
    # y's first session follows x's last basket in the concatenation, but has no previous one.
    assert together["y"].days_since_previous[0] == 0.0 and not together["y"].has_previous[0]


def test_a_row_at_a_time_equals_the_vectorized_pass_bit_for_bit():
    # dates over 30 years (leap days, month and year ends), gaps from seconds to months,
    # fractional quantities and amounts: every column, every calendar case
    rng = np.random.default_rng(5)
    funnel, when = [], dt.datetime(1999, 12, 30, 23, 59, 59)
    for n in range(3000):
        when += dt.timedelta(seconds=int(rng.choice([1, 3_600, 86_400, 40 * 86_400])
                                         * rng.random()) + 1)
        items = {f"p{k}": (float(rng.random() * 5), float(rng.random() * 99))
                 for k in range(int(rng.integers(0, 6)))}
        funnel.append(basket(when, items))
    expected = session_features(funnel).as_matrix()
    rows = np.stack([feature_row(b, funnel[i - 1] if i else None) for i, b in enumerate(funnel)])
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, expected)
