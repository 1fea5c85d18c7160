"""The asyncio client against an in-process fake PredictionService (no model needed)."""

import asyncio

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client import CollectorRegistry
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.client import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    CoalescingPolicy,
    ModelServerClient,
    RetryPolicy,
)
from serving.errors import CircuitOpenError, ModelServerError
from serving.tensors import to_tensor_proto


class FakePredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers y = 10 * x (version 7) after failing the first ``fail_first`` calls with ``code``."""

    def __init__(self, fail_first=0, code=grpc.StatusCode.UNAVAILABLE, delay_s=0.0):
        self.fail_first = fail_first
        self.code = code
        self.delay_s = delay_s
        self.batches: list[int] = []

    async def Predict(self, request, context):
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_first:
            self.fail_first -= 1
            self.batches.append(-1)
            await context.abort(self.code, "scripted failure")
        x = tf.make_ndarray(request.inputs["x"])  # how TensorFlow Serving parses a TensorProto
        self.batches.append(x.shape[0])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
        response.outputs["y"].CopyFrom(tf.make_tensor_proto(10 * x))
        return response


def run_with_server(service, body, **client_kwargs):
    """Start an in-process gRPC server with ``service``, run ``body(client)``, tear down."""

    async def main():
        server = grpc.aio.server()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        client_kwargs.setdefault("registry", CollectorRegistry())
        client = ModelServerClient(f"127.0.0.1:{port}", "toy", **client_kwargs)
        try:
            return await body(client)
        finally:
            await client.close()
            await server.stop(0)

    return asyncio.run(main())


FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)


def test_predict_round_trip_echoes_the_version():
    async def body(client):
        return await client.predict({"x": np.ones((2, 3), np.float32)})

    result = run_with_server(FakePredictionService(), body)
    np.testing.assert_array_equal(result.outputs["y"], np.full((2, 3), 10.0))
    assert (result.model_name, result.version, result.signature_name) == ("toy", 7, "serving_default")


def test_unavailable_is_retried_with_backoff():
    service = FakePredictionService(fail_first=2)
    registry = CollectorRegistry()

    async def body(client):
        return await client.predict({"x": np.ones((1, 3), np.float32)})

    result = run_with_server(service, body, retry=FAST_RETRY, registry=registry)
    assert result.version == 7 and service.batches == [-1, -1, 1]
    labels = {"method": "Predict", "code": "UNAVAILABLE"}
    assert registry.get_sample_value("lens_model_client_retries_total", labels) == 2
    assert registry.get_sample_value(
        "lens_model_client_requests_total", {"method": "Predict", "code": "OK"}
    ) == 1


def test_request_errors_are_not_retried_and_keep_the_servers_message():
    service = FakePredictionService(fail_first=5, code=grpc.StatusCode.INVALID_ARGUMENT)

    async def body(client):
        with pytest.raises(ModelServerError) as info:
            await client.predict({"x": np.ones((1, 3), np.float32)})
        return info.value

    error = run_with_server(service, body, retry=FAST_RETRY)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.message == "scripted failure"
    assert service.batches == [-1]


def test_deadline_bounds_the_call():
    async def body(client):
        with pytest.raises(ModelServerError) as info:
            await client.predict({"x": np.ones((1, 3), np.float32)}, timeout_s=0.2)
        return info.value

    error = run_with_server(FakePredictionService(delay_s=2.0), body, retry=FAST_RETRY)
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_circuit_opens_after_consecutive_failures_and_fails_fast():
    service = FakePredictionService(fail_first=100)

    async def body(client):
        for _ in range(2):
            with pytest.raises(ModelServerError):
                await client.predict({"x": np.ones((1, 3), np.float32)})
        with pytest.raises(CircuitOpenError):
            await client.predict({"x": np.ones((1, 3), np.float32)})

    run_with_server(
        service, body, retry=RetryPolicy(max_attempts=1),
        breaker=CircuitBreakerPolicy(failure_threshold=2, reset_timeout_s=60),
    )
    assert len(service.batches) == 2  # the third call never reached the server


def test_breaker_half_opens_after_the_cool_down():
    now = [0.0]
    breaker = CircuitBreaker(CircuitBreakerPolicy(failure_threshold=2, reset_timeout_s=5), clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN and not breaker.allow()
    now[0] = 5.0
    assert breaker.state == CircuitBreaker.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial call at a time
    breaker.record_failure()
    assert breaker.state == CircuitBreaker.OPEN
    now[0] = 10.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CircuitBreaker.CLOSED and breaker.allow()


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(initial_backoff_s=0.1, multiplier=2, max_backoff_s=0.3, jitter=0.0)
    assert [policy.backoff_s(n) for n in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_concurrent_single_calls_are_coalesced_and_split_back():
    service = FakePredictionService()

    async def body(client):
        calls = [client.predict_one({"x": np.full(3, i, np.float32)}) for i in range(20)]
        return await asyncio.gather(*calls)

    results = run_with_server(
        service, body, coalescing=CoalescingPolicy(max_batch_size=8, max_wait_s=0.05)
    )
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs["y"], np.full(3, 10.0 * i))
        assert result.version == 7
    # Batches travel concurrently: the server may see the short one before a full one.
    assert sorted(service.batches) == [4, 8, 8]


def test_coalesced_calls_all_see_a_failure():
    service = FakePredictionService(fail_first=1, code=grpc.StatusCode.NOT_FOUND)

    async def body(client):
        calls = [client.predict_one({"x": np.zeros(3, np.float32)}) for _ in range(3)]
        return await asyncio.gather(*calls, return_exceptions=True)

    errors = run_with_server(service, body, coalescing=CoalescingPolicy(max_batch_size=8, max_wait_s=0.05))
    assert [e.code for e in errors] == [grpc.StatusCode.NOT_FOUND] * 3


def test_tensor_protos_are_what_tensorflow_parses():
    proto = to_tensor_proto(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(tf.make_ndarray(proto), np.arange(6).reshape(2, 3))


def test_close_answers_calls_still_waiting_to_be_coalesced():
    service = FakePredictionService()

    async def body(client):
        pending = asyncio.ensure_future(client.predict_one({"x": np.ones(3, np.float32)}))
        await asyncio.sleep(0)  # joined a group that would wait 10 s for company
        await client.close()
        return await pending

    result = run_with_server(service, body, coalescing=CoalescingPolicy(max_batch_size=8, max_wait_s=10))
    np.testing.assert_array_equal(result.outputs["y"], np.full(3, 10.0))
