"""The worker's query API and `lens backfill` on a real broker with a real worker process.

The worker predicts with a real `lens serve` over the stand-in model (the last basket again, 2
units each at score 0.9, back in 1 day), so the customer and store views have a prediction and a
stock-out cell to show. Every wait is a poll loop with a deadline; nothing asserts on speed.
"""

import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Producer

from lens import v1
from lens.topics import INVENTORY_RESUPPLIES, POS_TRANSACTIONS
from tests.conftest import free_port
from tests.integration.processes import (
    ModelServer,
    Worker,
    closed,
    lens_env,
    line,
    save_stand_in_model,
    wait_for,
)


@pytest.fixture(scope="module")
def worker(kafka_bootstrap, tmp_path_factory):
    models = tmp_path_factory.mktemp("query-models") / "lens"
    models.mkdir()
    save_stand_in_model(models)
    server = ModelServer(models, free_port(), models.parent / "serve.log")
    server.start()
    worker = Worker(kafka_bootstrap, tmp_path_factory.mktemp("query-worker"),
                    "--model-server", f"127.0.0.1:{server.port}", "--predict-retry", "1",
                    "--inactivity-timeout", "600", "--sweep-interval", "1")
    try:
        worker.wait_ready()
        yield worker
    finally:
        code = worker.stop()
        server.stop()
        assert code == 0, worker.logs()


def get(worker, path):
    """(status, JSON body) of GET path on the worker; (None, None) while it cannot answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except OSError:
        return None, None


def test_customer_and_store_views_show_predictions_and_stockouts(worker, kafka_bootstrap):
    run = uuid.uuid4().hex[:6]
    customer, store = f"query-{run}", f"store-{run}"
    t0 = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
    tomorrow = (t0.date() + dt.timedelta(days=1)).isoformat()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for event in (line("Q1", 1, customer, "milk", t0, store=store),
                  closed("Q1", customer, t0 + dt.timedelta(seconds=5), line_count=1, store=store)):
        producer.produce(POS_TRANSACTIONS.name, key=customer.encode(),
                         value=event.SerializeToString())
    plan = v1.Resupply(store_id=store, product_id="milk", day=tomorrow, quantity=1)
    producer.produce(INVENTORY_RESUPPLIES.name, key=store.encode(), value=plan.SerializeToString())
    assert producer.flush(30) == 0

    def customer_view():
        status, body = get(worker, f"/v1/customers/{customer}")
        return body if status == 200 and body["prediction"] else None

    body = wait_for(customer_view, "the customer's prediction in the query API", worker)
    assert body["funnel"]["sessions"] == 1 and body["funnel"]["expected_store"] == store
    assert body["funnel"]["recent_sessions"][0]["products"] == ["milk"]
    p = body["prediction"]
    assert p["basket"] == [{"product_id": "milk", "score": pytest.approx(0.9), "quantity": 2.0}]
    assert p["days_to_next"] == 1.0 and p["model"] == {"name": "lens", "version": 1, "label": ""}
    assert body["cluster"] is None  # the stand-in model ships no behaviour clusters

    def store_view():
        status, body = get(worker, f"/v1/stores/{store}")
        return body if status == 200 and body["stockouts"] else None

    body = wait_for(store_view, "the store's stock-out cell", worker)
    # expected units: 2 predicted at score 0.9 on the predicted visit day
    (demand,) = body["demand"]
    assert (demand["product_id"], demand["day"], demand["planned"]) == ("milk", tomorrow, True)
    assert demand["predicted_demand"] == pytest.approx(1.8)
    assert (demand["resupply_quantity"], demand["residual"]) == (1.0, pytest.approx(-0.8))
    (cell,) = body["stockouts"]
    assert (cell["product_id"], cell["day"]) == ("milk", tomorrow)
    assert cell["shortfall"] == pytest.approx(0.8)

    for path in (f"/v1/customers/nobody-{run}", f"/v1/stores/nowhere-{run}"):
        status, body = get(worker, path)
        assert status == 404 and body["error"] == "not_found", (path, body)
    status, spec = get(worker, "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert {"/v1/customers/{customer_id}", "/v1/stores/{store_id}"} <= set(spec["paths"])


def test_backfill_loads_history_as_backfilled_sessions(worker, kafka_bootstrap, tmp_path):
    customer = f"history-{uuid.uuid4().hex[:6]}"
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0) - dt.timedelta(days=10)
    data = tmp_path / "history.csv"
    data.write_text("TRAN_ID,CLIENT_ID,PROD_ID,TIMESTAMP,PROD_AMOUNT,PRODT_QTY,STORE_ID\n" + "".join(
        f"{customer}-{day},{customer},{product},{(start + dt.timedelta(days=day)).isoformat()},2,1,S9\n"
        for day, product in ((0, "milk"), (0, "tea"), (4, "milk"), (8, "jam"))
    ))
    env = lens_env(LENS_KAFKA_BOOTSTRAP=kafka_bootstrap, LENS_RUN_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "lens.cli.main", "backfill", "--data", str(data), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "published 4 lines and 3 baskets" in done.stdout

    def loaded():
        status, body = get(worker, f"/v1/customers/{customer}")
        return body if status == 200 and body["funnel"]["sessions"] == 3 else None

    body = wait_for(loaded, "the backfilled history in the funnel state", worker)
    sessions = body["funnel"]["recent_sessions"]
    assert [s["products"] for s in sessions] == [["jam"], ["milk"], ["milk", "tea"]]  # newest first
    assert all(s["backfilled"] for s in sessions)
    assert body["funnel"]["expected_store"] == "S9" and body["prediction"] is None


def test_worker_runs_on_uvloop_by_default(worker):
    """LENS_FUNNEL_EVENT_LOOP defaults to uvloop, and the running worker is on it."""
    def stats():
        status, body = get(worker, "/funnel/stats/")
        return body if status == 200 else None

    assert wait_for(stats, "the worker's stats view", worker)["event_loop"] == "uvloop"
