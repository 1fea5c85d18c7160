"""The real ``lens serve`` process with the production config files (models.config,
batching.config, monitoring.config), the container's ``/models`` prefix mapped to a tmp dir."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from serving.client import CoalescingPolicy, ModelServerClient
from tests.conftest import free_port
from tests.integration.test_model_server import DEADLINE_S, call_continuously, wait_for
from tests.unit.serving.fixtures import expected_y, save_toy_version

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120  # importing TensorFlow on a busy 2-core machine


def lens_serve_command() -> list[str]:
    """``lens serve`` once lens/cli/main.py registers it; until then the same handler via -m."""
    from lens.cli import main

    if any(getattr(group, "__name__", "") == "lens.cli.serve" for group in main.COMMAND_GROUPS):
        return [sys.executable, "-m", "lens.cli.main", "serve"]
    return [sys.executable, "-m", "lens.cli.serve"]


@pytest.fixture(scope="module")
def lens_serve(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    save_toy_version(models / "lens", 1)
    port, rest_port = free_port(), free_port()
    log_path = models.parent / "lens-serve.log"
    command = lens_serve_command() + [
        f"--port={port}",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={REPO / 'serving' / 'models.config'}",
        "--model_config_file_poll_wait_seconds=60",
        "--file_system_poll_wait_seconds=1",
        "--enable_batching",
        f"--batching_parameters_file={REPO / 'serving' / 'batching.config'}",
        f"--monitoring_config_file={REPO / 'serving' / 'monitoring.config'}",
        f"--model_base_path_prefix_map=/models={models}",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    target = f"127.0.0.1:{port}"

    async def ready():
        async with ModelServerClient(target, "lens", registry=CollectorRegistry()) as client:
            await client.wait_until_serving(timeout_s=START_TIMEOUT_S)

    try:
        asyncio.run(ready())
    except Exception:
        process.kill()
        raise AssertionError(f"lens serve did not start:\n{log_path.read_text()[-3000:]}") from None
    yield {"process": process, "target": target, "rest_port": rest_port, "models": models, "log": log_path}
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_predict_and_coalesced_single_calls(lens_serve):
    async def main():
        async with ModelServerClient(
            lens_serve["target"], "lens", registry=CollectorRegistry(), timeout_s=10,
            coalescing=CoalescingPolicy(max_batch_size=16, max_wait_s=0.01),
        ) as client:
            batch = await client.predict({"x": np.ones((4, 3), np.float32)})
            singles = await asyncio.gather(
                *(client.predict_one({"x": np.full(3, i, np.float32)}) for i in range(10))
            )
            return batch, singles

    batch, singles = asyncio.run(main())
    assert batch.model_name == "lens" and batch.version == 1
    np.testing.assert_allclose(batch.outputs["y"], expected_y(np.ones((4, 3)), 1))
    for i, single in enumerate(singles):
        np.testing.assert_allclose(single.outputs["y"], expected_y(np.full(3, i), 1))


def test_metrics_on_the_monitoring_path_of_the_rest_port(lens_serve):
    url = f"http://127.0.0.1:{lens_serve['rest_port']}/monitoring/prometheus/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    assert 'lens_model_server_requests_total{code="OK",method="Predict",model="lens"' in text
    assert "lens_model_server_batch_size_bucket" in text


def test_new_version_is_served_with_zero_failed_calls(lens_serve):
    stop = threading.Event()
    target = lens_serve["target"]

    async def versions() -> list[int]:
        async with ModelServerClient(target, "lens", registry=CollectorRegistry(), timeout_s=10) as client:
            return [s.version for s in await client.get_model_status() if s.state == 30]

    with ThreadPoolExecutor(1) as pool:
        calls = pool.submit(asyncio.run, call_continuously(target, stop, model="lens"))
        time.sleep(0.5)
        save_toy_version(lens_serve["models"] / "lens", 2)
        wait_for(lambda: asyncio.run(versions()) == [2], "version 2 alone", timeout_s=DEADLINE_S)
        time.sleep(0.5)
        stop.set()
        seen, failures = calls.result(timeout=DEADLINE_S)
    assert failures == []
    assert seen[0] == 1 and seen[-1] == 2


def test_sigterm_stops_gracefully(lens_serve):
    process = lens_serve["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=DEADLINE_S) == 0
    assert "model server stopped" in lens_serve["log"].read_text()
