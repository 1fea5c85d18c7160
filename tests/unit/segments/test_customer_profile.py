import math

import numpy as np
import pytest

from lens.anomaly import ClusterModel
from lens.segments.customer_profile import customer_habits, profile_segments
from lens.segments.customer_segments import CustomerSegments
from lens.segments.embeddings import FunnelReadout
from lens.segments.product_segments import ProductSegments
from tests.unit.model.conftest import basket

FUNNELS = {
    "a": (
        basket("a", 0, "milk bread"),
        basket("a", 10, "milk eggs"),
        basket("a", 20, "milk bread eggs"),
    ),
    "b": (basket("b", 3, "tea"),),
    "c": (basket("c", 0, "tea"), basket("c", 4, "tea jam")),
}


def test_customer_habits_by_hand():
    a = customer_habits(FUNNELS["a"])
    # 3 visits over 20 days; sizes 2, 2, 3; 2.0 per item; basket 2 repeats milk (1 of 2),
    # basket 3 repeats all 3 -> 4 of 5.
    assert a["visits"] == 3 and a["days_between_visits"] == 10
    assert a["basket_size"] == pytest.approx(7 / 3) and a["spend"] == pytest.approx(14 / 3)
    assert (a["repeats"], a["later_items"], a["repeat_share"]) == (4, 5, 0.8)
    b = customer_habits(FUNNELS["b"])
    assert math.isnan(b["days_between_visits"]) and math.isnan(b["repeat_share"])


def test_segment_profiles_by_hand():
    readout = FunnelReadout(
        customers=("a", "b", "c"),
        embeddings=np.array([[0.0], [9.0], [1.0]]),
        days_to_next=np.array([6.0, 30.0, 2.0]),
        baskets=((), (), ()),
        quantities=((), (), ()),
    )
    clusters = ClusterModel(np.array([[0.5], [9.0]]))
    customers = CustomerSegments(readout, clusters, clusters.assign(readout.embeddings))
    names = ("milk", "bread", "eggs", "tea", "jam")
    products = ProductSegments(
        names, np.zeros((5, 1)), ClusterModel(np.zeros((3, 1))), np.array([0, 0, 1, 2, 2])
    )
    profile = profile_segments(FUNNELS, customers, products).set_index("segment")
    first, second = profile.loc[0], profile.loc[1]
    assert first["customers"] == 2 and first["share"] == pytest.approx(2 / 3)
    assert first["visits"] == 2.5
    assert first["days_between_visits"] == 7  # median of 10 and 4
    assert first["basket_size"] == pytest.approx((7 / 3 + 1.5) / 2)
    assert first["spend"] == pytest.approx((14 / 3 + 3) / 2)
    assert first["repeat_share"] == pytest.approx(5 / 7)  # pooled: (4 + 1) / (5 + 2)
    assert first["predicted_days_to_next"] == 4
    # a bought milk x3, bread x2, eggs x2; c tea x2, jam: segment 0 5/10, 2 3/10, 1 2/10.
    assert first["top_product_segments"] == "0 (50%); 2 (30%); 1 (20%)"
    assert second["customers"] == 1 and math.isnan(second["repeat_share"])
    assert second["top_product_segments"] == "2 (100%)"
