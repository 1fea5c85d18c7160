"""A real Prometheus server scrapes a LENS process (the alert subscriber, `python -m
lens.cli.alerts serve`) and answers a LENS metric through its HTTP API.

Needs the Debian package `prometheus` (`make setup` installs it); skipped when the binary is
absent. The scrape job is the one in deploy/prometheus/prometheus.yml, pointed at loopback.
"""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer

from lens import v1
from lens.topics import ANOMALY_ALERTS
from services.kafka import create_topics
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
JOB = "lens-alert-subscriber"
WAIT_S = 90.0

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is absent: `apt-get install -y prometheus` (make setup does)"
)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(probe, what: str, timeout_s: float = WAIT_S, process=None):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        try:
            result = probe()
            if result:
                return result
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def stop(process: subprocess.Popen, log) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    log.close()


def scrape_config(target: str) -> dict:
    """deploy/prometheus/prometheus.yml with only the subscriber job, aimed at ``target``."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    assert job["static_configs"][0]["targets"][0].endswith(":9102")
    job["static_configs"] = [{"targets": [target]}]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
    config["scrape_configs"] = [job]
    return config


@pytest.fixture
def subscriber(kafka_settings, tmp_path):
    create_topics(kafka_settings.bootstrap_servers)
    port = free_port()
    env = {**os.environ, "LENS_KAFKA_BOOTSTRAP": kafka_settings.bootstrap_servers, "LENS_RUN_DIR": str(tmp_path / "run")}
    log = (tmp_path / "subscriber.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "lens.cli.alerts", "serve", "--sink", f"jsonl:{tmp_path / 'alerts.jsonl'}",
         "--group", f"t-prom-{uuid.uuid4().hex[:8]}", "--metrics-port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).status == 200,
                 "the subscriber's /metrics", process=process)
        yield port
    finally:
        stop(process, log)


@pytest.fixture
def prometheus(subscriber, tmp_path):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(f"127.0.0.1:{subscriber}")))
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200,
                 "Prometheus to be ready", process=process)
        yield base
    finally:
        stop(process, log)


def query(base: str, promql: str) -> list[dict]:
    answer = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_reads_the_subscribers_delivered_alerts(kafka_settings, prometheus):
    alert = v1.AnomalyAlert(alert_id=f"0{uuid.uuid4().hex[:6]}:1", customer_id="0042", cluster=1,
                            score=4.0, threshold=3.0, distance=0.7, model=v1.ModelRef(name="lens", version=1))
    alert.event_time.FromDatetime(dt.datetime.now(dt.timezone.utc))
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    producer.produce(ANOMALY_ALERTS.name, key=b"0042", value=alert.SerializeToString())
    assert producer.flush(30) == 0

    up = wait_for(lambda: [r for r in query(prometheus, f'up{{job="{JOB}"}}') if r["value"][1] == "1"],
                  "the subscriber target to be up")
    assert up[0]["metric"]["job"] == JOB
    delivered = wait_for(
        lambda: [r for r in query(prometheus, f'sum by (type, sink) (lens_alerts_delivered_total{{job="{JOB}"}})')
                 if r["metric"] == {"type": "anomaly", "sink": "jsonl"} and float(r["value"][1]) >= 1],
        "lens_alerts_delivered_total through Prometheus",
    )
    assert float(delivered[0]["value"][1]) >= 1


def test_every_dashboard_query_is_valid_promql(prometheus):
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "lens.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query(prometheus, target["expr"])  # a syntax error answers HTTP 400
