"""The insight report (``lens report``): one self-contained HTML page with the product and
customer segments, behaviour anomalies and stock-out risk of a trained LENS model, plus CSVs.

- ``InsightReport``: the parts, ``html()`` and ``write(out_dir)``.
- ``customer_anomalies`` / ``anomaly_table``: Algorithm 1 over the customer segments.
- ``stockout_risk`` / ``riskiest_products``: Algorithm 2's short cells per product.
- ``HtmlPage``: the page builder (base64 PNGs, no script, no external resource).
- ``write_tables``: tables as CSV files.
"""

from lens.report.customer_anomalies import anomaly_table, customer_anomalies
from lens.report.html_page import HtmlPage, Section
from lens.report.insight_report import REPORT_FILE, SECTIONS, InsightReport
from lens.report.stockout_risk import RISK_COLUMNS, riskiest_products, stockout_risk
from lens.report.tables import write_tables

__all__ = [
    "REPORT_FILE",
    "RISK_COLUMNS",
    "SECTIONS",
    "HtmlPage",
    "InsightReport",
    "Section",
    "anomaly_table",
    "customer_anomalies",
    "riskiest_products",
    "stockout_risk",
    "write_tables",
]
