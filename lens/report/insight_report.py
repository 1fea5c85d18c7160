"""The insight report: product segments, customer segments, behaviour anomalies and stock-out
risk of one trained LENS model on one history, as one self-contained HTML page plus its tables
as CSV.

    report = InsightReport(products=..., customers=..., profile=..., anomalies=..., risk=...)
    report.write("reports/tafeng")  # report.html + product_segments.csv, customer_segments.csv...

Sections (``<section id>``): ``product-segments``, ``customer-segments``, ``anomalies``,
``stockout-risk``. ``risk`` None means no resupply plan was given; the section says so.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lens.anomaly import BatchAnomalies
from lens.report import plots
from lens.report.customer_anomalies import anomaly_table
from lens.report.html_page import HtmlPage
from lens.report.tables import write_tables
from lens.segments.customer_segments import CustomerSegments
from lens.segments.product_segments import ProductSegments
from lens.segments.purity import PurityReport

__all__ = ["REPORT_FILE", "SECTIONS", "InsightReport"]

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
SECTIONS = ("product-segments", "customer-segments", "anomalies", "stockout-risk")
TOP_RISKS = 15  # products drawn in the demand-vs-resupply chart


@dataclass(frozen=True)
class InsightReport:
    """Everything the page shows; ``product_summary``/``product_members`` as
    ``ProductSegments.summary``/``members`` return them, ``profile`` as
    ``lens.segments.profile_segments`` does, ``risk`` as ``stockout_risk`` does."""

    products: ProductSegments
    product_summary: pd.DataFrame
    product_members: pd.DataFrame
    purity: PurityReport | None
    customers: CustomerSegments
    profile: pd.DataFrame
    anomalies: BatchAnomalies
    risk: pd.DataFrame | None
    context: list[str] = field(default_factory=list)  # lines for the page's intro (model, data)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The CSV tables, by file stem."""
        tables = {
            "product_segments": self.product_summary,
            "product_segment_members": self.product_members,
            "customer_segments": self.profile,
            "customer_segment_members": self.customers.members(),
            "anomaly_scores": anomaly_table(self.anomalies),
        }
        if self.risk is not None:
            tables["stockout_risk"] = self.risk
        return tables

    def write(self, out: str | Path) -> list[Path]:
        """``out/report.html`` and the tables as CSV; the paths written (page first)."""
        out = Path(out)
        paths = write_tables(out, self.tables())
        page = out / REPORT_FILE
        page.write_text(self.html(), encoding="utf-8")
        return [page, *paths]

    def html(self) -> str:
        page = HtmlPage("LENS insight report")
        page.intro.extend(self.context)
        log.info("drawing the product segments")
        self._products(page)
        log.info("drawing the customer segments")
        self._customers(page)
        log.info("drawing the anomaly scores")
        self._anomalies(page)
        self._risk(page)
        return page.render()

    def _products(self, page: HtmlPage) -> None:
        p = self.products
        section = page.section("product-segments", "Product segments")
        silhouette = (
            "" if np.isnan(p.model.silhouette) else f" (silhouette {p.model.silhouette:.3f})"
        )
        section.text(
            f"{len(p.products):,} products clustered by k-means over the learned item embeddings "
            f"into K = {p.k} need-based segments{silhouette}. Representatives are the products "
            "closest to the segment centroid, with the number of baskets holding them."
        )
        if self.purity is not None:
            section.text(self.purity.describe()).image(
                plots.purity_chart(self.purity), "subclass purity"
            )
        else:
            section.text(
                "No PRODUCT_SUBCLASS in the data (not a Ta-Feng file): no purity figure.", note=True
            )
        section.image(
            plots.embedding_map(
                p.embeddings, p.labels, "Item embeddings (PCA), coloured by segment"
            ),
            "product embedding projection",
        ).table(self.product_summary)

    def _customers(self, page: HtmlPage) -> None:
        c = self.customers
        section = page.section("customer-segments", "Customer segments")
        section.text(
            f"{len(c.readout.customers):,} customers clustered on their funnel embeddings by the "
            f"behaviour clusters of the live anomaly detector (Algorithm 1): K = {c.k}."
        )
        section.image(
            plots.embedding_map(
                c.readout.embeddings, c.labels, "Funnel embeddings (PCA), coloured by segment"
            ),
            "customer embedding projection",
        ).image(plots.profile_chart(self.profile), "segment profiles").table(self.profile)

    def _anomalies(self, page: HtmlPage) -> None:
        a = self.anomalies
        section = page.section("anomalies", "Behaviour anomalies")
        scored = int(np.isfinite(a.scores).sum())
        section.text(
            "Each customer's last basket against the basket predicted from the ones before it "
            "(dA, smoothed over the latest sessions as the live detector does), as a robust "
            f"z-score dB within the customer's segment: {len(a.customers):,} customers with enough "
            f"sessions, {scored:,} in segments large enough to score, {len(a.outliers()):,} above "
            f"the alert threshold {a.threshold:g}."
        )
        if scored:
            section.image(
                plots.anomaly_histogram(a.scores, a.threshold), "anomaly score distribution"
            )
        section.table(anomaly_table(a), max_rows=20)

    def _risk(self, page: HtmlPage) -> None:
        section = page.section("stockout-risk", "Stock-out risk")
        if self.risk is None:
            section.text(
                "No resupply plan was given (lens report --resupply PLAN): predicted demand "
                "cannot be compared with supply.",
                note=True,
            )
            return
        if self.risk.empty:
            section.text("No product is predicted to run short of the resupply plan.")
            return
        section.text(
            f"{len(self.risk):,} products predicted to run short of the resupply plan "
            "(Algorithm 2, as `lens stockouts`); predicted demand and resupply summed over their "
            "short store-days."
        )
        section.image(plots.demand_chart(self.risk.head(TOP_RISKS)), "predicted demand vs resupply")
        section.table(self.risk)
