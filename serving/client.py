"""Asyncio client of the TensorFlow Serving gRPC API (``lens serve`` or ``tensorflow/serving``).

    client = ModelServerClient("127.0.0.1:8500", "lens", registry=CollectorRegistry())
    result = await client.predict({"x": batch})              # one Predict, batch-major inputs
    row = await client.predict_one({"x": features})          # coalesced with concurrent calls
    result.outputs["y"], result.version                      # numpy arrays, version that answered
    await client.close()

Every call has a deadline (``timeout_s``, per call; retries share it). UNAVAILABLE and
DEADLINE_EXCEEDED attempts are retried with exponential backoff and jitter (``RetryPolicy``).
A circuit breaker (``CircuitBreakerPolicy``) opens after consecutive server-side failures and then
fails calls at once with ``CircuitOpenError`` until a trial call succeeds after the cool-down.
``predict_one``/``predict_rows`` coalesce concurrent calls with the same signature, version and
non-batch shapes into one batched Predict of at most ``CoalescingPolicy.max_batch_size`` rows,
waiting at most ``max_wait_s`` for company, and split the batch-major outputs back.

Errors: ``ModelServerError`` (``.code`` is the server's ``grpc.StatusCode``, message verbatim) and
``CircuitOpenError``; both are ``ServingError``s. Metrics go to the ``registry`` given
(``lens_model_client_*``).
"""

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.errors import CircuitOpenError, ModelServerError, ServingError
from serving.tensors import to_ndarray, to_tensor_proto

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "CoalescingPolicy",
    "ModelServerClient",
    "PredictResult",
    "RetryPolicy",
]

log = logging.getLogger(__name__)

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Codes that say the server (not the request) is in trouble: they count towards the breaker.
SERVER_FAULTS = RETRYABLE + (
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per call (1 = no retry) and the backoff between them: initial * multiplier**n,
    capped at ``max_backoff_s``, times a random factor in [1 - jitter, 1 + jitter]."""

    max_attempts: int = 3
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2
    retry_codes: tuple = RETRYABLE

    def backoff_s(self, retry: int) -> float:
        base = min(self.initial_backoff_s * self.multiplier**retry, self.max_backoff_s)
        return base * random.uniform(1.0 - self.jitter, 1.0 + self.jitter)


@dataclass(frozen=True)
class CircuitBreakerPolicy:
    """Open after ``failure_threshold`` consecutive server-side failures; after ``reset_timeout_s``
    let one trial call through (half-open): success closes the circuit, failure re-opens it."""

    failure_threshold: int = 5
    reset_timeout_s: float = 5.0


@dataclass(frozen=True)
class CoalescingPolicy:
    """Client-side micro-batching of ``predict_one``/``predict_rows`` calls."""

    max_batch_size: int = 64  # rows per coalesced Predict
    max_wait_s: float = 0.002  # how long the first call of a batch waits for company


@dataclass(frozen=True)
class PredictResult:
    """Outputs by alias (numpy, batch-major unless from ``predict_one``) and the spec that answered."""

    outputs: dict[str, np.ndarray]
    model_name: str
    version: int
    signature_name: str


class CircuitBreaker:
    """closed -> open (after N consecutive failures) -> half-open (after the cool-down) -> closed."""

    CLOSED, HALF_OPEN, OPEN = 0, 1, 2

    def __init__(self, policy: CircuitBreakerPolicy, clock=time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = self.CLOSED
        self._trial_in_flight = False

    @property
    def state(self) -> int:
        if self._state == self.OPEN and self._clock() - self._opened_at >= self.policy.reset_timeout_s:
            return self.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one trial call at a time."""
        state = self.state
        if state == self.CLOSED:
            return True
        if state == self.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            self._state = self.HALF_OPEN
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._state = self.CLOSED
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self._state == self.HALF_OPEN or self._failures >= self.policy.failure_threshold:
            self._state = self.OPEN
            self._opened_at = self._clock()

    def release(self) -> None:
        """A call ended with neither verdict (a client-side error): free the trial slot."""
        self._trial_in_flight = False

    def retry_after_s(self) -> float:
        return max(0.0, self.policy.reset_timeout_s - (self._clock() - self._opened_at))


class _ClientMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "lens_model_client_requests", "Calls to the model server by method and final status code.",
            ["method", "code"], registry=registry,
        )
        self.latency = Histogram(
            "lens_model_client_request_latency_seconds",
            "Call latency including retries and coalescing wait, by method.",
            ["method"], registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        )
        self.retries = Counter(
            "lens_model_client_retries", "Retried attempts by method and the code that caused them.",
            ["method", "code"], registry=registry,
        )
        self.circuit_state = Gauge(
            "lens_model_client_circuit_state", "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=registry,
        )
        self.coalesced_rows = Histogram(
            "lens_model_client_coalesced_batch_rows", "Rows per coalesced Predict.",
            registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future
    deadline: float
    squeeze: bool = False  # predict_one: answer row i as outputs[i], without the batch dim


@dataclass
class _Group:
    entries: list = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None
    started: float = 0.0  # perf_counter when the first call joined


class ModelServerClient:
    """One model on one model server address (a TF Serving replica set behind one address)."""

    def __init__(
        self,
        target: str,
        model_name: str,
        *,
        timeout_s: float = 1.0,
        retry: RetryPolicy = RetryPolicy(),
        breaker: CircuitBreakerPolicy = CircuitBreakerPolicy(),
        coalescing: CoalescingPolicy = CoalescingPolicy(),
        registry: CollectorRegistry | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.target = target
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.retry = retry
        self.coalescing = coalescing
        self.breaker = CircuitBreaker(breaker)
        self._metrics = _ClientMetrics(registry if registry is not None else REGISTRY)
        self._channel = channel or grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ],
        )
        self._predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._health_stub = health_pb2_grpc.HealthStub(self._channel)
        self._groups: dict[tuple, _Group] = {}
        self._sending: set[asyncio.Task] = set()

    async def __aenter__(self) -> "ModelServerClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for group in self._groups.values():
            if group.timer is not None:
                group.timer.cancel()
        for key in list(self._groups):
            self._flush(key)
        if self._sending:  # coalesced calls already on their way get their answers
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self._channel.close()

    # -- Predict ---------------------------------------------------------------------------
    def _request(self, inputs, signature_name, version, version_label, output_filter):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        if signature_name:
            request.model_spec.signature_name = signature_name
        if version is not None:
            request.model_spec.version.value = version
        elif version_label:
            request.model_spec.version_label = version_label
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(to_tensor_proto(value))
        request.output_filter.extend(output_filter)
        return request

    async def predict(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        signature_name: str = "",
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> PredictResult:
        """One Predict with batch-major inputs (``[batch, ...]``); outputs as the server sent them."""
        request = self._request(inputs, signature_name, version, version_label, output_filter)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        response = await self._call("Predict", self._predict_stub.Predict, request, deadline)
        return PredictResult(
            outputs={alias: to_ndarray(t) for alias, t in response.outputs.items()},
            model_name=response.model_spec.name,
            version=response.model_spec.version.value,
            signature_name=response.model_spec.signature_name,
        )

    async def predict_one(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        signature_name: str = "",
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> PredictResult:
        """One example (inputs without the batch dim), coalesced with concurrent calls; outputs
        come back without the batch dim."""
        rows = {alias: np.asarray(v)[np.newaxis] for alias, v in inputs.items()}
        return await self._coalesce(
            rows, 1, True, signature_name, version, version_label, tuple(output_filter), timeout_s
        )

    async def predict_rows(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        signature_name: str = "",
        version: int | None = None,
        version_label: str | None = None,
        output_filter: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> PredictResult:
        """Batch-major inputs of a few rows, coalesced with concurrent calls into one Predict."""
        arrays = {alias: np.asarray(v) for alias, v in inputs.items()}
        sizes = {a.shape[0] if a.ndim else -1 for a in arrays.values()}
        if len(sizes) != 1 or -1 in sizes:
            raise ServingError.invalid_argument(
                "predict_rows needs batch-major inputs with the same dim 0 (use predict_one for one example)"
            )
        rows = sizes.pop()
        if rows > self.coalescing.max_batch_size:
            return await self.predict(
                arrays, signature_name=signature_name, version=version,
                version_label=version_label, output_filter=output_filter, timeout_s=timeout_s,
            )
        return await self._coalesce(
            arrays, rows, False, signature_name, version, version_label, tuple(output_filter), timeout_s
        )

    async def _coalesce(
        self, arrays, rows, squeeze, signature_name, version, version_label, output_filter, timeout_s
    ) -> PredictResult:
        key = (
            signature_name, version, version_label, output_filter,
            tuple((a, v.dtype.str, v.shape[1:]) for a, v in arrays.items()),
        )
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            group.timer = loop.call_later(self.coalescing.max_wait_s, self._flush, key)
            group.started = time.perf_counter()
        group.entries.append(_Pending(arrays, rows, future, deadline, squeeze))
        group.rows += rows
        if group.rows >= self.coalescing.max_batch_size:
            self._flush(key)
        return await future

    def _flush(self, key: tuple) -> None:
        group = self._groups.pop(key, None)
        if group is None or not group.entries:
            return
        if group.timer is not None:
            group.timer.cancel()
        task = asyncio.get_running_loop().create_task(
            self._send_group(key, group.entries, group.started)
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_group(self, key: tuple, entries: list[_Pending], started: float) -> None:
        # Metrics per coalesced Predict, not per caller (a caller costs microseconds; a metric
        # update about as much): calls counted by final code, latency of the batch's first caller.
        code = "OK"
        try:
            await self._answer_group(key, entries)
        except ServingError as exc:
            code = exc.code.name
        except Exception:  # noqa: BLE001 - already handed to the callers
            code = "UNKNOWN"
        self._metrics.requests.labels("PredictCoalesced", code).inc(len(entries))
        self._metrics.latency.labels("PredictCoalesced").observe(time.perf_counter() - started)

    async def _answer_group(self, key: tuple, entries: list[_Pending]) -> None:
        signature_name, version, version_label, output_filter, _ = key
        total = sum(e.rows for e in entries)
        self._metrics.coalesced_rows.observe(total)
        inputs = {
            alias: np.concatenate([e.inputs[alias] for e in entries], axis=0) if len(entries) > 1
            else entries[0].inputs[alias]
            for alias in entries[0].inputs
        }
        try:
            request = self._request(inputs, signature_name, version, version_label, output_filter)
            deadline = min(e.deadline for e in entries)
            response = await self._call("Predict", self._predict_stub.Predict, request, deadline, count=False)
            outputs = {alias: to_ndarray(t) for alias, t in response.outputs.items()}
            for alias, array in outputs.items():
                if array.ndim == 0 or array.shape[0] != total:
                    raise ServingError.failed_precondition(
                        f"output {alias} is not batch-major (shape {list(array.shape)} for {total} "
                        "rows): call predict() instead of coalescing"
                    )
        except Exception as exc:  # noqa: BLE001 - every waiting caller gets the failure
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            raise
        spec = response.model_spec
        name, version, signature = spec.name, spec.version.value, spec.signature_name
        start = 0
        for entry in entries:
            stop = start + entry.rows
            if not entry.future.done():
                if entry.squeeze:
                    rows = {alias: array[start] for alias, array in outputs.items()}
                else:
                    rows = {alias: array[start:stop] for alias, array in outputs.items()}
                entry.future.set_result(PredictResult(rows, name, version, signature))
            start = stop

    # -- other RPCs ------------------------------------------------------------------------
    async def get_model_metadata(
        self, *, version: int | None = None, timeout_s: float | None = None
    ) -> tuple[int, dict]:
        """(version, {signature key: SignatureDef}) of the version that answered."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        if version is not None:
            request.model_spec.version.value = version
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        response = await self._call("GetModelMetadata", self._predict_stub.GetModelMetadata, request, deadline)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return response.model_spec.version.value, dict(signature_map.signature_def)

    async def get_model_status(
        self, *, version: int | None = None, timeout_s: float | None = None
    ) -> list:
        """The ``ModelVersionStatus`` entries (newest first)."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        if version is not None:
            request.model_spec.version.value = version
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        response = await self._call("GetModelStatus", self._model_stub.GetModelStatus, request, deadline)
        return list(response.model_version_status)

    async def wait_until_serving(self, timeout_s: float = 30.0) -> None:
        """Wait until the health service says SERVING (``lens serve``; TF Serving has no health
        service, so UNIMPLEMENTED counts as ready once GetModelStatus shows an AVAILABLE version)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                reply = await self._health_stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    try:
                        statuses = await self.get_model_status(timeout_s=1.0)
                        if any(s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE for s in statuses):
                            return
                    except ServingError:
                        pass
            if time.monotonic() > deadline:
                raise ModelServerError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"model server {self.target} not serving after {timeout_s:.0f}s; is it running?",
                )
            await asyncio.sleep(0.2)

    # -- the call loop ---------------------------------------------------------------------
    async def _call(self, method: str, rpc, request, deadline: float, count: bool = True):
        start = time.perf_counter()
        code = "OK"
        try:
            return await self._call_with_retries(method, rpc, request, deadline)
        except ServingError as exc:
            code = exc.code.name
            raise
        finally:
            if count:
                self._metrics.requests.labels(method, code).inc()
                self._metrics.latency.labels(method).observe(time.perf_counter() - start)

    async def _call_with_retries(self, method: str, rpc, request, deadline: float):
        attempt = 0
        while True:
            if not self.breaker.allow():
                self._metrics.circuit_state.set(self.breaker.state)
                raise CircuitOpenError(
                    f"circuit open for model server {self.target}: too many failures; retry in "
                    f"{self.breaker.retry_after_s():.1f}s"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.breaker.release()
                raise ModelServerError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
            try:
                response = await rpc(request, timeout=remaining)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code in SERVER_FAULTS:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()  # the server answered: it is alive
                self._metrics.circuit_state.set(self.breaker.state)
                attempt += 1
                if code in self.retry.retry_codes and attempt < self.retry.max_attempts:
                    pause = self.retry.backoff_s(attempt - 1)
                    if time.monotonic() + pause < deadline:
                        self._metrics.retries.labels(method, code.name).inc()
                        await asyncio.sleep(pause)
                        continue
                raise ModelServerError(code, exc.details() or code.name) from exc
            except asyncio.CancelledError:
                self.breaker.release()
                raise
            self.breaker.record_success()
            self._metrics.circuit_state.set(self.breaker.state)
            return response
