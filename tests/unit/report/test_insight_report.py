import re

import numpy as np
import pandas as pd
import pytest

from lens.anomaly import AnomalyConfig
from lens.report.customer_anomalies import anomaly_table, customer_anomalies
from lens.report.insight_report import REPORT_FILE, SECTIONS, InsightReport
from lens.segments import profile_segments, segment_customers, segment_products
from lens.segments.catalog import product_frequencies


@pytest.fixture(scope="module")
def parts(reader, funnels):
    products = segment_products(reader.trained, k=4)
    customers = segment_customers(reader, funnels, k=2)
    anomalies = customer_anomalies(
        reader, funnels, customers.model, AnomalyConfig(min_history=3, min_sessions=1)
    )
    frequencies = product_frequencies(funnels)
    subclasses = {p: f"class{i % 3}" for i, p in enumerate(products.products)}
    return dict(
        products=products,
        product_summary=products.summary(frequencies, subclasses),
        product_members=products.members(frequencies, subclasses),
        purity=products.purity(subclasses, controls=2),
        customers=customers,
        profile=profile_segments(funnels, customers, products),
        anomalies=anomalies,
    )


def test_anomalies_are_scored_within_the_customer_segments(parts, funnels):
    anomalies, customers = parts["anomalies"], parts["customers"]
    several = [c for c, f in funnels.items() if len(f) >= 2]
    assert sorted(anomalies.customers) == sorted(several)
    assert anomalies.model is customers.model
    table = anomaly_table(anomalies)
    scores = table["score"].dropna()
    assert list(scores) == sorted(scores, reverse=True)
    assert (table["alert"] == (table["score"] > anomalies.threshold)).all()


def test_the_report_writes_one_page_and_its_tables(parts, tmp_path):
    risk = pd.DataFrame(
        {
            "product_id": ["P1"],
            "product_segment": [0],
            "short_cells": [2],
            "predicted_demand": [9.0],
            "resupply_quantity": [4.0],
            "shortfall": [5.0],
        }
    )
    report = InsightReport(**parts, risk=risk, context=["model: tiny"])
    paths = report.write(tmp_path)
    assert paths[0] == tmp_path / REPORT_FILE
    assert {p.name for p in paths[1:]} == {
        "product_segments.csv",
        "product_segment_members.csv",
        "customer_segments.csv",
        "customer_segment_members.csv",
        "anomaly_scores.csv",
        "stockout_risk.csv",
    }
    html = paths[0].read_text()
    assert re.findall(r'<section id="([\w-]+)">', html) == list(SECTIONS)
    # Product and customer projections, purity, profiles, anomaly histogram, demand chart.
    assert html.count('src="data:image/png;base64,') == 6
    assert "subclass purity" in html and "model: tiny" in html
    profile = pd.read_csv(tmp_path / "customer_segments.csv")
    assert list(profile["customers"]) == list(parts["profile"]["customers"])
    members = pd.read_csv(tmp_path / "customer_segment_members.csv", dtype={"customer_id": str})
    np.testing.assert_array_equal(members["segment"], parts["customers"].labels)


def test_without_a_resupply_plan_the_section_says_so(parts, tmp_path):
    report = InsightReport(**parts, risk=None)
    paths = report.write(tmp_path)
    assert "stockout_risk.csv" not in {p.name for p in paths}
    html = paths[0].read_text()
    stockout = html[html.index('<section id="stockout-risk">') :]
    assert "No resupply plan was given" in stockout and "<img" not in stockout


def test_an_empty_risk_table_says_nothing_runs_short(parts, tmp_path):
    empty = pd.DataFrame(
        columns=["product_id", "predicted_demand", "resupply_quantity", "shortfall"]
    )
    html = InsightReport(**parts, risk=empty).html()
    assert "No product is predicted to run short" in html
