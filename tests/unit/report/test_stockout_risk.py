import numpy as np
import pandas as pd

from lens import v1
from lens.anomaly import ClusterModel
from lens.report.stockout_risk import RISK_COLUMNS, riskiest_products
from lens.segments.product_segments import ProductSegments


def alert(product: str, day: str, demand: float, resupply: float) -> v1.StockoutAlert:
    return v1.StockoutAlert(
        store_id="S1",
        product_id=product,
        day=day,
        predicted_demand=demand,
        resupply_quantity=resupply,
        shortfall=demand - resupply,
    )


def test_short_cells_are_summed_per_product_riskiest_first():
    alerts = [
        alert("tea", "2026-01-01", 5, 1),
        alert("milk", "2026-01-01", 3, 2),
        alert("tea", "2026-01-02", 4, 3),
        alert("jam", "2026-01-02", 6, 1),
    ]
    products = ProductSegments(
        ("milk", "tea"), np.zeros((2, 1)), ClusterModel(np.zeros((2, 1))), np.array([0, 1])
    )
    risk = riskiest_products(alerts, products)
    assert tuple(risk.columns) == RISK_COLUMNS
    # tea: 2 cells, demand 9, resupply 4, short 5; jam: short 5 (tie -> by id); milk: short 1.
    assert list(risk["product_id"]) == ["jam", "tea", "milk"]
    tea = risk.set_index("product_id").loc["tea"]
    assert (
        tea["short_cells"],
        tea["predicted_demand"],
        tea["resupply_quantity"],
        tea["shortfall"],
    ) == (2, 9, 4, 5)
    assert pd.isna(risk.loc[0, "product_segment"]) and risk.loc[1, "product_segment"] == 1


def test_no_short_cell_gives_an_empty_table():
    risk = riskiest_products([])
    assert risk.empty and tuple(risk.columns) == RISK_COLUMNS
