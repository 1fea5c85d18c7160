"""The riskiest products of Algorithm 2: the short cells ``lens stockouts`` finds, summed per
product, with the product's segment.

    product_id, product_segment, short_cells, predicted_demand, resupply_quantity, shortfall

(predicted demand and resupply summed over the product's short (store, day) cells), riskiest
(largest shortfall) first.
"""

from collections.abc import Iterable

import pandas as pd

from lens import v1
from lens.data.basket import Funnels
from lens.segments.product_segments import ProductSegments
from lens.stockout.batch import batch_predictions, customer_states, stockout_report
from lens.stockout.demand import StockoutConfig

__all__ = ["RISK_COLUMNS", "riskiest_products", "stockout_risk"]

RISK_COLUMNS = (
    "product_id",
    "product_segment",
    "short_cells",
    "predicted_demand",
    "resupply_quantity",
    "shortfall",
)


def riskiest_products(
    alerts: Iterable[v1.StockoutAlert], products: ProductSegments | None = None
) -> pd.DataFrame:
    """Short cells summed per product (RISK_COLUMNS), largest shortfall first (ties by id);
    product_segment is empty for a product outside ``products``."""
    cells = pd.DataFrame(
        [(a.product_id, a.predicted_demand, a.resupply_quantity, a.shortfall) for a in alerts],
        columns=["product_id", "predicted_demand", "resupply_quantity", "shortfall"],
    )
    per_product = cells.groupby("product_id", as_index=False).agg(
        short_cells=("shortfall", "size"),
        predicted_demand=("predicted_demand", "sum"),
        resupply_quantity=("resupply_quantity", "sum"),
        shortfall=("shortfall", "sum"),
    )
    segment_of = products.segment_of if products is not None else (lambda _: None)
    per_product["product_segment"] = pd.array(
        [segment_of(p) for p in per_product["product_id"]], dtype="Int64"
    )
    ranked = per_product.sort_values(["shortfall", "product_id"], ascending=[False, True])
    return ranked[list(RISK_COLUMNS)].reset_index(drop=True)


def stockout_risk(
    trained,
    funnels: Funnels,
    resupplies: Iterable[v1.Resupply],
    config: StockoutConfig = StockoutConfig(),
    products: ProductSegments | None = None,
    *,
    model_name: str = "lens",
) -> pd.DataFrame:
    """Batch Algorithm 2 exactly as ``lens stockouts`` runs it (each customer's worker state
    after the history, the model's prediction from it, the resupply plan), per product."""
    from lens.model import LensRecommender

    states = customer_states(funnels)
    predictions = batch_predictions(
        states, LensRecommender(trained=trained), model=v1.ModelRef(name=model_name)
    )
    report = stockout_report(predictions, resupplies, config, states=states)
    return riskiest_products(report.alerts, products)
