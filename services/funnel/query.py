"""The worker's query API: what CRM, clienteling and store apps read from the funnel state.

    GET /v1/customers/{customer_id}   latest prediction, funnel summary, behaviour cluster
    GET /v1/stores/{store_id}         predicted demand cells and open stock-out cells
    GET /openapi.json                 the OpenAPI 3.0 description of these endpoints

Every answer is JSON; an unknown customer or store is a 404 ``{"error": "not_found", ...}``.

Routing. A customer lives in one partition of the ``funnel-state`` table, held by one worker;
any worker answers any request. Faust's ``table_route`` sends the request to the worker that
holds the key's partition as Faust's producer partitions keys (murmur2, the Java client's
default). The table's partition is the one the POS wrote the customer's records to, and a POS
may use another partitioner (librdkafka's default is CRC32): when the routed worker does not
hold the customer, it asks the other workers' local-only endpoint
(``/v1/local/customers/{id}``) before answering 404. Stores need no fallback: the worker
itself keys the store-keyed topic, so Faust's partitioner is the table's.

The payload builders (``customer_body``, ``store_body``) are plain functions of the table
values, tested without Faust; ``define_query_views`` wires them to the app.
"""

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

import aiohttp

from lens.stockout import StoreStockout
from lens.stockout.demand import MICRO
from lens.stream import FunnelState
from lens.stream.event_time import MICROS_PER_DAY, to_datetime
from services.funnel.stockout import load_store

if TYPE_CHECKING:
    from services.funnel.app import FunnelService

__all__ = ["FORWARDED_HEADER", "OPENAPI", "customer_body", "define_query_views", "store_body"]

log = logging.getLogger(__name__)

# Set on the requests one worker sends another's local endpoint (never by clients).
FORWARDED_HEADER = "X-Lens-Forwarded"
RECENT_SESSIONS = 5  # sessions listed in a customer's funnel summary
ASK_TIMEOUT_S = 5.0  # a worker that does not answer a forwarded query in time counts as "not here"


def _iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return to_datetime(micros).isoformat().replace("+00:00", "Z")


def not_found(kind: str, key: str) -> dict[str, str]:
    return {
        "error": "not_found",
        "message": f"{kind} {key!r} is unknown: no worker holds state for it (no {kind} event "
        "has been processed, or its partition is still recovering)",
    }


def customer_body(state: FunnelState) -> dict[str, Any]:
    """The ``Customer`` schema of ``OPENAPI`` for one table value."""
    stats = state.stats
    prediction = None
    p = state.last_prediction
    if p is not None:
        days = p.days_to_next if math.isfinite(p.days_to_next) else None
        prediction = {
            "prediction_id": p.prediction_id,
            "as_of": _iso(p.as_of),
            "session_index": p.session_index,
            "store_id": p.store_id,
            "basket": [
                {"product_id": product, "score": score, "quantity": quantity}
                for product, score, quantity in p.basket
            ],
            "days_to_next": days,
            "next_visit": None if days is None else _iso(p.as_of + round(days * MICROS_PER_DAY)),
            "model": {"name": p.model_name, "version": p.model_version, "label": p.model_label},
        }
    recent = [
        {
            "transaction_id": s.transaction_id,
            "store_id": s.store_id,
            "time": _iso(s.timestamp),
            "session_index": s.session_index,
            "products": list(s.products),
            "backfilled": s.backfilled,
        }
        for s in reversed(state.sessions[-RECENT_SESSIONS:])
    ]
    return {
        "customer_id": state.customer_id,
        "prediction": prediction,
        "funnel": {
            "sessions": stats.sessions,
            "kept_sessions": len(state.sessions),
            "last_session": _iso(stats.last_session_time),
            "expected_store": state.expected_store() or None,
            "store_visits": dict(stats.store_visits),
            "items": stats.items,
            "units": stats.units,
            "spend": stats.spend,
            "open_basket": None if state.open_basket is None else {
                "transaction_id": state.open_basket.transaction_id,
                "lines": len(state.open_basket.line_nos),
            },
            "recent_sessions": recent,
        },
        "cluster": None if state.cluster < 0 else state.cluster,
    }


def store_body(stockout: StoreStockout, watermark: int | None) -> dict[str, Any]:
    """The ``Store`` schema of ``OPENAPI`` for one store's Algorithm 2 state."""
    demand = [
        {
            "product_id": product,
            "day": day,
            "predicted_demand": units / MICRO,
            "resupply_quantity": stockout.resupply.get((product, day), 0) / MICRO,
            "residual": stockout.residual(product, day),
            "planned": day in stockout.planned_days,
        }
        for (product, day), units in sorted(
            stockout.demand.items(), key=lambda cell: (cell[0][1], cell[0][0])
        )
    ]
    stockouts = [
        {
            "product_id": a.product_id,
            "day": a.day,
            "predicted_demand": a.predicted_demand,
            "resupply_quantity": a.resupply_quantity,
            "shortfall": a.shortfall,
            "alert_id": a.alert_id,
        }
        for a in stockout.standing_alerts()
    ]
    return {
        "store_id": stockout.store_id,
        "as_of": _iso(watermark),
        "customers": len(stockout.contributions),
        "demand": demand,
        "stockouts": stockouts,
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


_NUM, _INT, _STR, _BOOL = ({"type": t} for t in ("number", "integer", "string", "boolean"))
_TIME = {"type": "string", "format": "date-time"}
_DAY = {"type": "string", "format": "date"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _get(summary: str, param: str, description: str, schema: str) -> dict[str, Any]:
    return {"get": {
        "summary": summary,
        "parameters": [{"name": param, "in": "path", "required": True, "schema": _STR,
                        "description": description}],
        "responses": {
            "200": {"description": "found", "content": _json(schema)},
            "404": {"description": "unknown", "content": _json("Error")},
            "503": {"description": "partitions not assigned yet (worker starting or rebalancing)"},
        },
    }}


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "LENS funnel worker query API",
        "version": "1",
        "description": "Read-only views of the funnel-state workers. Any worker answers any "
        "request; it forwards to the worker that holds the customer's or store's partition.",
    },
    "paths": {
        "/v1/customers/{customer_id}": _get(
            "A customer's latest prediction, funnel summary and behaviour cluster",
            "customer_id", "customer (loyalty card) id as the POS sends it", "Customer"),
        "/v1/stores/{store_id}": _get(
            "A store's predicted demand and open stock-out cells (Algorithm 2)",
            "store_id", "store id as the POS and the resupply plan send it", "Store"),
        "/openapi.json": {"get": {"summary": "This description",
                                  "responses": {"200": {"description": "OpenAPI 3.0 JSON"}}}},
    },
    "components": {"schemas": {
        "Error": _object({"error": _STR, "message": _STR}),
        "PredictedItem": _object({
            "product_id": _STR,
            "score": {**_NUM, "description": "model probability of the item"},
            "quantity": {**_NUM, "description": "predicted units; 0 = model without quantities"},
        }),
        "Prediction": _object({
            "prediction_id": _STR,
            "as_of": {**_TIME, "description": "event time of the session it was made after"},
            "session_index": _INT,
            "store_id": {**_STR, "description": "the store the customer is expected to visit"},
            "basket": {"type": "array", "items": {"$ref": "#/components/schemas/PredictedItem"}},
            "days_to_next": _nullable({**_NUM, "description": "days until the next visit"}),
            "next_visit": _nullable({**_TIME, "description": "as_of + days_to_next"}),
            "model": _object({"name": _STR, "version": _INT, "label": _STR}),
        }),
        "Customer": _object({
            "customer_id": _STR,
            "prediction": _nullable({"$ref": "#/components/schemas/Prediction",
                                     "description": "null until the model answered"}),
            "funnel": _object({
                "sessions": {**_INT, "description": "sessions ever closed"},
                "kept_sessions": {**_INT, "description": "recent sessions kept for the model"},
                "last_session": _nullable(_TIME),
                "expected_store": _nullable(_STR),
                "store_visits": {"type": "object", "additionalProperties": _INT},
                "items": _INT, "units": _NUM, "spend": _NUM,
                "open_basket": _nullable(_object({"transaction_id": _STR, "lines": _INT})),
                "recent_sessions": {"type": "array", "items": _object({
                    "transaction_id": _STR, "store_id": _STR, "time": _TIME,
                    "session_index": _INT, "products": {"type": "array", "items": _STR},
                    "backfilled": _BOOL,
                })},
            }),
            "cluster": _nullable({**_INT, "description": "behaviour cluster (Algorithm 1); "
                                  "null = not assigned (no cluster model)"}),
        }),
        "Cell": _object({"product_id": _STR, "day": _DAY, "predicted_demand": _NUM,
                         "resupply_quantity": _NUM, "residual": _NUM,
                         "planned": {**_BOOL, "description": "the store's resupply plan covers "
                                     "the day; an unplanned day's cells never alert"}}),
        "Stockout": _object({"product_id": _STR, "day": _DAY, "predicted_demand": _NUM,
                             "resupply_quantity": _NUM, "shortfall": _NUM, "alert_id": _STR}),
        "Store": _object({
            "store_id": _STR,
            "as_of": _nullable({**_TIME, "description": "newest prediction seen for the store"}),
            "customers": {**_INT, "description": "customers whose predictions add demand"},
            "demand": {"type": "array", "items": {"$ref": "#/components/schemas/Cell"}},
            "stockouts": {"type": "array", "items": {"$ref": "#/components/schemas/Stockout"}},
        }),
    }},
}


def define_query_views(app: Any, service: "FunnelService") -> None:
    """Add the query API's pages to ``service``'s Faust ``app`` (called by ``_define_views``)."""

    def local_customer(customer_id: str) -> dict[str, Any] | None:
        state = service.tables.get_state(customer_id)
        return None if state is None else customer_body(state)

    async def from_other_workers(request: Any, customer_id: str) -> dict[str, Any] | None:
        me = str(app.conf.canonical_url).rstrip("/")
        others = {str(url).rstrip("/") for url in app.router.tables_metadata()} - {me}
        path = request.url.path.replace("/v1/customers/", "/v1/local/customers/", 1)

        async def ask(url: str) -> dict[str, Any] | None:
            try:
                async with app.http_client.get(
                    f"{url}{path}", headers={FORWARDED_HEADER: "1"},
                    timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT_S),
                ) as response:
                    return await response.json() if response.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                log.warning("query for customer %s: worker %s did not answer (%s)",
                            customer_id, url, exc)
                return None

        for found in await asyncio.gather(*(ask(url) for url in sorted(others))):
            if found is not None:
                return found
        return None

    @app.page("/v1/customers/{customer_id}")
    @app.table_route(table=service.states, match_info="customer_id")
    async def query_customer(web, request, customer_id: str):
        body = local_customer(customer_id)
        if body is None and FORWARDED_HEADER not in request.headers:
            body = await from_other_workers(request, customer_id)
        if body is None:
            return web.json(not_found("customer", customer_id), status=404)
        return web.json(body)

    @app.page("/v1/local/customers/{customer_id}")
    async def query_local_customer(web, request, customer_id: str):
        body = local_customer(customer_id)
        if body is None:
            return web.json(not_found("customer", customer_id), status=404)
        return web.json(body)

    @app.page("/v1/stores/{store_id}")
    @app.table_route(table=service.stores, match_info="store_id")
    async def query_store(web, request, store_id: str):
        record = load_store(service.store_tables, store_id, service.config)
        if record is None:
            return web.json(not_found("store", store_id), status=404)
        return web.json(store_body(record.stockout, record.watermark))

    @app.page("/openapi.json")
    async def openapi(web, request):
        return web.json(OPENAPI)
