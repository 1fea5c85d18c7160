"""The query API: payloads from table values, and the Faust pages over dict tables (no broker;
Faust's router is told the key lives on this worker)."""

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from lens import v1
from lens.stockout import ContributionUpdate, StockoutConfig, StoreStockout
from lens.stream import Sessionizer
from lens.stream.event_time import to_timestamp
from services.funnel.query import OPENAPI, customer_body, store_body
from services.funnel.stockout import StoreProcessor
from tests.unit.services.funnel.conftest import T0_US, closed, line, store_event

DAY_US = 86_400 * 1_000_000


def a_customer_with_a_prediction():
    sessionizer = Sessionizer()
    state = sessionizer.new_state("c1")
    for event in (line("T1", 1, "c1", "milk", 0), line("T1", 2, "c1", "tea", 1), closed("T1", "c1", 2)):
        sessionizer.on_event(state, v1.PosEvent.FromString(event))
    state.set_prediction(v1.Prediction(
        prediction_id="c1:1", customer_id="c1", store_id="S1", as_of=to_timestamp(T0_US),
        session_index=1, days_to_next=1.5,
        basket=[v1.PredictedItem(product_id="milk", score=0.9, quantity=2.0)],
        model=v1.ModelRef(name="lens", version=3),
    ))
    state.cluster = 2
    return state


def test_customer_body_has_prediction_funnel_and_cluster():
    body = customer_body(a_customer_with_a_prediction())
    p = body["prediction"]
    assert p["basket"] == [{"product_id": "milk", "score": 0.9, "quantity": 2.0}]
    assert p["days_to_next"] == 1.5 and p["model"] == {"name": "lens", "version": 3, "label": ""}
    assert p["as_of"] == "2026-03-02T10:00:00Z"
    assert p["next_visit"] == "2026-03-03T22:00:00Z"  # 1.5 days later
    funnel = body["funnel"]
    assert funnel["sessions"] == 1 and funnel["expected_store"] == "S1"
    assert funnel["recent_sessions"][0]["products"] == ["milk", "tea"]
    assert funnel["open_basket"] is None and body["cluster"] == 2
    json.dumps(body)  # JSON-able as it is


def test_customer_without_prediction_or_cluster_says_null():
    state = Sessionizer().new_state("c2")
    body = customer_body(state)
    assert body["prediction"] is None and body["cluster"] is None
    assert body["funnel"]["last_session"] is None and body["funnel"]["expected_store"] is None


def test_store_body_lists_demand_and_open_stockouts():
    stockout = StoreStockout("S1", StockoutConfig())
    stockout.set_resupply("milk", "2026-03-03", 1)
    stockout.set_resupply("tea", "2026-03-03", 9)
    stockout.apply(ContributionUpdate(
        "S1", "c1", {("milk", "2026-03-03"): 3_000_000, ("tea", "2026-03-03"): 1_000_000,
                     ("milk", "2026-03-04"): 5_000_000},  # no plan for 03-04 yet
        T0_US, ("lens", 3, ""),
    ))
    body = store_body(stockout, T0_US)
    assert body["customers"] == 1 and body["as_of"] == "2026-03-02T10:00:00Z"
    assert [(c["product_id"], c["predicted_demand"], c["residual"], c["planned"])
            for c in body["demand"]] == [
        ("milk", 3.0, -2.0, True), ("tea", 1.0, 8.0, True), ("milk", 5.0, -5.0, False),
    ]
    (short,) = body["stockouts"]
    assert (short["product_id"], short["day"], short["shortfall"]) == ("milk", "2026-03-03", 2.0)


def test_openapi_describes_every_query_path_and_resolves_its_refs():
    assert {"/v1/customers/{customer_id}", "/v1/stores/{store_id}", "/openapi.json"} <= set(OPENAPI["paths"])
    schemas = OPENAPI["components"]["schemas"]
    refs = {m for m in json.dumps(OPENAPI).split('"') if m.startswith("#/components/schemas/")}
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(schemas)
    # the payload builders give every property the schema requires
    assert set(customer_body(a_customer_with_a_prediction())) == set(schemas["Customer"]["required"])
    assert set(store_body(StoreStockout("S"), None)) == set(schemas["Store"]["required"])


@pytest.fixture
def service(make_config, tables, monkeypatch):
    from faust.exceptions import SameNode

    from services.funnel.app import FunnelService

    service = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    service.tables = service.store_tables = tables  # dict tables stand in for Faust's

    async def here(*args, **kwargs):
        raise SameNode()

    monkeypatch.setattr(service.app.router, "route_req", here)
    # a single worker: nobody else to ask
    monkeypatch.setattr(service.app.router, "tables_metadata", lambda: {})
    return service


def get_all(service, *paths):
    """(status, JSON body) of each GET, in one event loop (the aiohttp app binds to it)."""
    from aiohttp.test_utils import TestClient, TestServer

    async def main():
        async with TestClient(TestServer(service.app.web.web_app)) as client:
            answers = []
            for path in paths:
                response = await client.get(path)
                answers.append((response.status, await response.json()))
            return answers

    return asyncio.run(main())


def test_pages_answer_from_the_tables_with_json_404s(service, tables):
    tables.put_state(a_customer_with_a_prediction())
    processor = StoreProcessor(service.config)
    store_event(processor, tables, json.dumps({
        "t": "resupply", "store": "S1", "product": "milk", "day": "2026-03-03", "quantity": 1,
    }).encode())

    customer, nobody, store, no_store, openapi = get_all(
        service, "/v1/customers/c1", "/v1/customers/nobody", "/v1/stores/S1", "/v1/stores/S404",
        "/openapi.json",
    )
    assert customer[0] == 200 and customer[1]["prediction"]["basket"][0]["product_id"] == "milk"
    assert nobody[0] == 404 and nobody[1]["error"] == "not_found"
    assert "'nobody'" in nobody[1]["message"]
    assert store[0] == 200 and store[1]["demand"] == [] and store[1]["stockouts"] == []
    assert no_store[0] == 404 and no_store[1]["error"] == "not_found"
    assert openapi == (200, json.loads(json.dumps(OPENAPI)))


def test_a_customer_on_another_worker_is_found_there(service, make_config, monkeypatch):
    """The POS partitioned the customer unlike Faust's producer: the worker Faust routed to
    does not hold it, so it asks the other workers' local endpoint."""
    from aiohttp.test_utils import TestClient, TestServer

    from services.funnel.app import FunnelService
    from tests.unit.services.funnel.conftest import DictTables

    other = FunnelService(make_config(model_server=None), registry=CollectorRegistry())
    other.tables = DictTables()
    other.tables.put_state(a_customer_with_a_prediction())

    async def main():
        async with TestServer(other.app.web.web_app) as other_server:
            url = str(other_server.make_url("")).rstrip("/")
            monkeypatch.setattr(service.app.router, "tables_metadata", lambda: {url: {}})
            async with TestClient(TestServer(service.app.web.web_app)) as client:
                found = await client.get("/v1/customers/c1")
                missing = await client.get("/v1/customers/nobody")
                answers = [(found.status, await found.json()), (missing.status, await missing.json())]
            await service.app.http_client.close()
            return answers

    (status, body), (missing, _) = asyncio.run(main())
    assert status == 200 and body["customer_id"] == "c1" and body["cluster"] == 2
    assert missing == 404
