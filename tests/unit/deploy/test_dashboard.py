"""The Grafana dashboard queries only metrics LENS really exports.

Exported names are collected, not listed: every module under services/ and serving/ that uses
prometheus_client is imported and each of its classes that takes just a ``registry`` is built on
a fresh CollectorRegistry; Faust's sensors are created with the ``name_prefix`` the services pass
to ``setup_prometheus_sensors``. A renamed or removed metric makes this test fail.
"""

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "lens.json").read_text())
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "unknown": ("",),
}


def metric_modules() -> list[Path]:
    return sorted(
        path
        for package in ("services", "serving")
        for path in (ROOT / package).rglob("*.py")
        if "prometheus_client" in path.read_text()
    )


def faust_prefixes() -> set[str]:
    prefixes = set()
    for path in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup_prometheus_sensors":
                for keyword in node.keywords:
                    if keyword.arg == "name_prefix" and isinstance(keyword.value, ast.Constant):
                        prefixes.add(keyword.value.value)
    return prefixes


def _takes_only_a_registry(cls) -> bool:
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False
    names = [p.name for p in parameters]
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return "registry" in names and set(required) <= {"registry"}


@pytest.fixture(scope="module")
def exported() -> set[str]:
    registry = CollectorRegistry()
    for path in metric_modules():
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and _takes_only_a_registry(cls):
                cls(registry=registry)
    from faust.sensors.prometheus import FaustMetrics

    for prefix in faust_prefixes():
        FaustMetrics.create(registry, prefix)
    names = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def expressions() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in DASHBOARD["panels"] for target in panel["targets"]]


def test_collection_finds_every_metric_family(exported):
    # The four metric sources of LENS all contribute (guards the collection itself).
    for name in ("lens_funnel_records_total", "lens_model_server_request_latency_seconds_bucket",
                 "lens_alerts_delivered_total", "lens_funnel_faust_topic_partition_end_offset"):
        assert name in exported


@pytest.mark.parametrize("title,expr", expressions())
def test_every_queried_metric_is_exported(exported, title, expr):
    names = set(re.findall(r"\blens_[A-Za-z0-9_:]+", expr))
    assert names, f"{title}: {expr} queries no LENS metric"
    assert names <= exported, f"{title}: not exported by LENS code: {sorted(names - exported)}"


def test_dashboard_covers_what_operators_watch():
    titles = " | ".join(p["title"].lower() for p in DASHBOARD["panels"])
    for topic in ("throughput", "lag", "prediction latency", "model errors", "alerts by type", "dead letters"):
        assert topic in titles
    latency = [e for t, e in expressions() if t.startswith("Prediction latency")]
    assert any("histogram_quantile(0.5," in e for e in latency)
    assert any("histogram_quantile(0.99," in e for e in latency)


def test_panels_are_well_formed():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)) and DASHBOARD["uid"]
    for panel in DASHBOARD["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
        assert panel["datasource"]["type"] == "prometheus"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
