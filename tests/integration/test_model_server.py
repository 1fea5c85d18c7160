"""Contract tests of the model server over gRPC: an in-process ``ModelServer`` on a free port.

Each behaviour TensorFlow Serving has (codes, messages, echoed model specs, batching, version
swaps, config reloads, health, metrics) is checked against ``serving/`` here; the real
``lens serve`` process is exercised in test_model_server_process.py.
"""

import asyncio
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.client import ModelServerClient, RetryPolicy
from serving.options import ServerOptions
from serving.server import ModelServer
from serving.tensors import to_ndarray, to_tensor_proto
from tests.unit.serving.fixtures import expected_y, predict_request, save_toy_version

DEADLINE_S = 30  # bound on every wait in this file; polls run every second


class InProcessServer:
    """A ModelServer running on its own event loop thread."""

    def __init__(self, **options) -> None:
        options.setdefault("port", 0)
        options.setdefault("metrics_port", 0)
        self.server = ModelServer(ServerOptions(**options), registry=CollectorRegistry())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self._call(self.server.start(), timeout=120)
        self.target = f"127.0.0.1:{self.port}"
        self.channel = grpc.insecure_channel(self.target)
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def _call(self, coroutine, timeout=DEADLINE_S):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.channel.close()
        self._call(self.server.stop(grace_s=2))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.server.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.read().decode()


def wait_for(condition, what: str, timeout_s: float = DEADLINE_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def write_config(path: Path, models: dict[str, str], extra: str = "") -> Path:
    body = "".join(
        f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {extra} }}\n'
        for name, base in models.items()
    )
    path.write_text(f"model_config_list {{\n{body}}}\n")
    return path


def rpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10)
    return info.value


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    for version in (1, 2):
        save_toy_version(root / "toy", version)
    (root / "batching.config").write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 50000 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 100 }\n"
    )
    config = write_config(
        root / "models.config", {"toy": "toy"},
        extra="model_version_policy { specific { versions: 1 versions: 2 } } "
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }',
    )
    running = InProcessServer(
        model_config_file=str(config), enable_batching=True,
        batching_parameters_file=str(root / "batching.config"),
    )
    yield running
    running.stop()


# -- Predict ----------------------------------------------------------------------------------
def test_predict_uses_serving_default_and_the_latest_version(server):
    response = server.predict.Predict(predict_request([[1, 2, 3]]), timeout=10)
    assert response.model_spec.name == "toy"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(to_ndarray(response.outputs["y"]), expected_y([[1, 2, 3]], 2))


@pytest.mark.parametrize("spec", [{"version": 1}, {"label": "stable"}])
def test_version_and_label_select_the_version(server, spec):
    response = server.predict.Predict(predict_request([[1, 1, 1]], **spec), timeout=10)
    assert response.model_spec.version.value == 1
    np.testing.assert_allclose(to_ndarray(response.outputs["y"]), [[3.0, 3.0, 3.0]])


def test_output_filter_returns_only_those_outputs(server):
    response = server.predict.Predict(predict_request([[1, 2, 3]], output_filter=["total"]), timeout=10)
    assert set(response.outputs) == {"total"}


def _extra_input():
    request = predict_request([[1, 2, 3]])
    request.inputs["extra"].CopyFrom(to_tensor_proto(np.zeros(1, np.float32)))
    return request


def _scalar():
    request = predict_request([[1, 2, 3]], signature="scalar")
    del request.inputs["x"]
    request.inputs["s"].CopyFrom(to_tensor_proto(np.float32(1)))
    return request


@pytest.mark.parametrize(
    "make_request, code, message",
    [
        (lambda: predict_request([[1, 2, 3]], model="nope"), grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Latest(nope)"),
        (lambda: predict_request([[1, 2, 3]], version=3), grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Specific(toy, 3)"),
        (lambda: predict_request([[1, 2, 3]], label="gold"), grpc.StatusCode.INVALID_ARGUMENT,
         "Unrecognized servable version label: gold"),
        (lambda: predict_request([[1, 2, 3]], signature="nope"), grpc.StatusCode.FAILED_PRECONDITION,
         'Serving signature key "nope" not found.'),
        (_extra_input, grpc.StatusCode.INVALID_ARGUMENT,
         "input size does not match signature: 2!=1 len({extra,x}) != len({x}). "
         "Sent extra: {extra}. Missing but required: {}."),
        (lambda: predict_request([[1, 2, 3]], output_filter=["nope"]), grpc.StatusCode.INVALID_ARGUMENT,
         "output tensor alias not found in signature: nope Outputs expected to be in the set {total,y}."),
        (_scalar, grpc.StatusCode.INVALID_ARGUMENT,
         "Batching Run() input tensors must have at least one dimension"),
        (lambda: predict_request(np.zeros((33, 3))), grpc.StatusCode.INVALID_ARGUMENT,
         "Task size 33 is larger than maximum input batch size 32"),
    ],
)
def test_predict_failures_match_tf_serving(server, make_request, code, message):
    error = rpc_error(server.predict.Predict, make_request())
    assert (error.code(), error.details()) == (code, message)


def test_concurrent_requests_are_batched_and_split_back(server):
    registry = server.server.metrics.registry
    labels = {"model": "toy", "signature": "serving_default"}

    def batches_and_rows():
        return (registry.get_sample_value("lens_model_server_batch_size_count", labels) or 0,
                registry.get_sample_value("lens_model_server_batch_size_sum", labels) or 0)

    before = batches_and_rows()
    inputs = [np.full((n % 3 + 1, 3), n, np.float32) for n in range(12)]
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(server.predict.Predict, predict_request(x), timeout=10) for x in inputs]
        responses = [f.result() for f in futures]
    for x, response in zip(inputs, responses):
        np.testing.assert_allclose(to_ndarray(response.outputs["y"]), expected_y(x, 2))
    after = batches_and_rows()
    assert after[1] - before[1] == sum(len(x) for x in inputs)
    assert after[0] - before[0] < len(inputs)  # some requests shared a batch (50 ms timeout)


# -- GetModelMetadata -------------------------------------------------------------------------
def test_metadata_returns_a_packed_signature_def_map(server):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "toy"
    response = server.predict.GetModelMetadata(request, timeout=10)
    assert (response.model_spec.name, response.model_spec.version.value) == ("toy", 2)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "pair", "scalar"} <= set(signatures.signature_def)
    assert signatures.signature_def["serving_default"].outputs["y"].dtype == 1  # DT_FLOAT


@pytest.mark.parametrize(
    "fields, message",
    [
        ([], "GetModelMetadataRequest must specify at least one metadata_field"),
        (["signature_def", "bogus"], "Metadata field bogus is not supported"),
    ],
)
def test_metadata_needs_the_signature_def_field(server, fields, message):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
    request.model_spec.name = "toy"
    error = rpc_error(server.predict.GetModelMetadata, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


# -- ModelService, unimplemented methods, health, metrics -------------------------------------
def test_model_status(server):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "toy"
    response = server.models.GetModelStatus(request, timeout=10)
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert [(s.version, s.state) for s in response.model_version_status] == [(2, available), (1, available)]
    request.model_spec.version.value = 9
    error = rpc_error(server.models.GetModelStatus, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "Could not find version 9 of model toy")
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    error = rpc_error(server.models.GetModelStatus, request)
    assert error.details() == "Could not find any versions of model nope"


@pytest.mark.parametrize(
    "method, request_type",
    [
        ("Classify", classification_pb2.ClassificationRequest),
        ("Regress", regression_pb2.RegressionRequest),
        ("MultiInference", inference_pb2.MultiInferenceRequest),
    ],
)
def test_classify_regress_multi_inference_are_unimplemented(server, method, request_type):
    error = rpc_error(getattr(server.predict, method), request_type())
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_health_is_serving(server):
    stub = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_prometheus_metrics(server):
    server.predict.Predict(predict_request([[1, 2, 3]]), timeout=10)
    text = server.metrics_text()
    assert 'lens_model_server_requests_total{code="OK",method="Predict",model="toy",signature="serving_default"}' in text
    assert "lens_model_server_request_latency_seconds_bucket" in text
    assert 'lens_model_server_loaded_versions{model="toy"} 2.0' in text


# -- versions and config changes while serving ------------------------------------------------
async def call_continuously(
    target: str, stop: threading.Event, model: str = "toy", workers: int = 4
) -> tuple[list, list]:
    """Predict in a loop from ``workers`` tasks until ``stop``; (versions seen, failures)."""
    seen, failures = [], []
    async with ModelServerClient(target, model, timeout_s=10, registry=CollectorRegistry(),
                                 retry=RetryPolicy(max_attempts=1)) as client:

        async def worker(i: int):
            x = np.full((1, 3), i, np.float32)
            while not stop.is_set():
                try:
                    result = await client.predict({"x": x})
                    # y = 2x + version: the answer must come from the version it names.
                    np.testing.assert_allclose(result.outputs["y"], expected_y(x, result.version))
                    seen.append(result.version)
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    failures.append(repr(exc))
                await asyncio.sleep(0.005)

        await asyncio.gather(*(worker(i) for i in range(workers)))
    return seen, failures


def test_a_new_version_is_served_without_restart_and_without_failed_calls(tmp_path):
    save_toy_version(tmp_path / "toy", 1)
    running = InProcessServer(
        model_name="toy", model_base_path=str(tmp_path / "toy"), file_system_poll_wait_seconds=1,
        enable_batching=True,
    )
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(1) as pool:
            calls = pool.submit(asyncio.run, call_continuously(running.target, stop))
            time.sleep(0.5)
            save_toy_version(tmp_path / "toy", 2)
            wait_for(lambda: running.server.manager.available_versions("toy") == [2], "version 2 alone")
            time.sleep(0.5)
            stop.set()
            seen, failures = calls.result(timeout=DEADLINE_S)
        assert failures == []
        assert seen[0] == 1 and seen[-1] == 2 and set(seen) == {1, 2}
        states = {s.version: s.state for s in running.server.manager.status(predict_request([[0]]).model_spec)}
        assert states == {2: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                          1: get_model_status_pb2.ModelVersionStatus.END}
    finally:
        stop.set()
        running.stop()


def test_config_file_changes_are_picked_up(tmp_path):
    save_toy_version(tmp_path / "toy", 1)
    save_toy_version(tmp_path / "other", 5)
    config = write_config(tmp_path / "models.config", {"toy": str(tmp_path / "toy")})
    running = InProcessServer(model_config_file=str(config), model_config_file_poll_wait_seconds=1)
    try:
        error = rpc_error(running.predict.Predict, predict_request([[1, 2, 3]], model="other"))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        write_config(config, {"other": str(tmp_path / "other")})
        wait_for(lambda: running.server.manager.available_versions("other") == [5], "model other")
        response = running.predict.Predict(predict_request([[1, 2, 3]], model="other"), timeout=10)
        assert response.model_spec.version.value == 5
        wait_for(lambda: not running.server.manager.available_versions("toy"), "toy unloaded")
        error = rpc_error(running.predict.Predict, predict_request([[1, 2, 3]]))
        assert error.details() == "Servable not found for request: Latest(toy)"
    finally:
        running.stop()


def test_graceful_stop_finishes_calls_in_flight(tmp_path):
    save_toy_version(tmp_path / "toy", 1)
    (tmp_path / "batching.config").write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 1000000 }\n"
    )
    running = InProcessServer(
        model_name="toy", model_base_path=str(tmp_path / "toy"), enable_batching=True,
        batching_parameters_file=str(tmp_path / "batching.config"),
    )
    # The three calls wait in the batch queue (1 s timeout) when the stop begins.
    futures = [running.predict.Predict.future(predict_request([[i, 0, 0]]), timeout=20) for i in range(3)]
    time.sleep(0.3)
    running._call(running.server.stop(grace_s=10))
    for i, future in enumerate(futures):
        np.testing.assert_allclose(to_ndarray(future.result().outputs["y"]), expected_y([[i, 0, 0]], 1))
    error = rpc_error(running.predict.Predict, predict_request([[1, 2, 3]]))
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # no new calls after the stop
    running.channel.close()
    running.loop.call_soon_threadsafe(running.loop.stop)


def test_a_version_whose_warmup_fails_never_serves(tmp_path):
    save_toy_version(tmp_path / "toy", 1, warmup=[predict_request([[1, 2, 3]])])
    running = InProcessServer(
        model_name="toy", model_base_path=str(tmp_path / "toy"), file_system_poll_wait_seconds=1,
        max_num_load_retries=0,
    )
    try:
        save_toy_version(tmp_path / "toy", 2, warmup=[predict_request([[1, 2, 3]], signature="nope")])
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "toy"

        def version_2_ended():
            statuses = running.models.GetModelStatus(request, timeout=10).model_version_status
            return any(s.version == 2 and s.state == get_model_status_pb2.ModelVersionStatus.END
                       for s in statuses)

        wait_for(version_2_ended, "version 2 to fail its warmup")
        request.model_spec.version.value = 2
        (status,) = running.models.GetModelStatus(request, timeout=10).model_version_status
        assert status.status.error_code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert status.status.error_message == 'Serving signature key "nope" not found.'
        # Latest aspires version 2 only, but it never became AVAILABLE: version 1 keeps serving.
        response = running.predict.Predict(predict_request([[1, 2, 3]]), timeout=10)
        assert response.model_spec.version.value == 1
    finally:
        running.stop()


def test_reload_config_request_switches_models(tmp_path):
    from tensorflow_serving.apis import model_management_pb2

    save_toy_version(tmp_path / "toy", 1)
    save_toy_version(tmp_path / "prod" / "other", 4)
    running = InProcessServer(
        model_name="toy", model_base_path=str(tmp_path / "toy"),
        model_base_path_prefix_map=(f"/models={tmp_path / 'prod'}",),
    )
    try:
        request = model_management_pb2.ReloadConfigRequest()
        request.config.model_config_list.config.add(name="other", base_path="/models/other",
                                                    model_platform="tensorflow")
        reply = running.models.HandleReloadConfigRequest(request, timeout=DEADLINE_S)
        assert reply.status.error_code == 0
        response = running.predict.Predict(predict_request([[1, 2, 3]], model="other"), timeout=10)
        assert response.model_spec.version.value == 4
    finally:
        running.stop()
