"""The funnel worker's side of the model server: encode a customer's funnel, ask, build a Prediction.

    encoder(states, max_sessions, max_items) -> {"session_items", "session_features",
                                                "session_count", "customer_id"}   (batch-major)
    ModelPredictor(client, model_label="", routing=None).predict(state) -> v1.Prediction
    PredictionDispatcher(predictor, publish, ...)   in-flight limit, retry with backoff, metrics

The inputs are those of the exported signatures (``lens.model.export``): for B customers with
S = max_sessions and L = max_basket_items (read from the server's signature metadata)::

    session_items    string  [B, S, L]  product ids, "" = padding
    session_features float32 [B, S, F]  raw features in lens.data.features.FEATURE_NAMES order
    session_count    int32   [B]
    customer_id      string  [B]

``serving_inputs`` builds the same arrays as the model package's encoder
(``lens.model.export``), so serving sees the same features as training; ``ModelPredictor``
takes any encoder with this shape.

Outputs read: ``next_basket`` (items, item_scores, quantities, basket_size, ranking,
ranking_scores, days_to_next); when a model's next_basket has no days_to_next, ``time_to_next``
is called as well.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lens import v1
from lens.data.features import FEATURE_NAMES
from lens.stream import FunnelState
from lens.stream.event_time import to_timestamp
from services.funnel.in_flight import InFlightLimit, Outcome
from services.funnel.metrics import FunnelMetrics

if TYPE_CHECKING:
    from services.funnel.canary import CanaryGuard

__all__ = [
    "CLUSTER_HEADER",
    "Encoder",
    "Forecast",
    "ModelPredictor",
    "PredictionDispatcher",
    "Predictor",
    "prediction_from_outputs",
    "serving_inputs",
]

log = logging.getLogger(__name__)

Encoder = Callable[[Sequence[FunnelState], int, int], dict[str, np.ndarray]]

MAX_BASKET = 10  # Prediction.basket: at most 10 items (schema)
# Kafka header of a lens.predictions record: the customer's behaviour cluster (Algorithm 1's fk),
# ASCII integer. A header, not a field: the cluster is the worker's, not part of the prediction.
CLUSTER_HEADER = "lens-cluster"


@dataclass(frozen=True)
class Forecast:
    """What one model call gives: the prediction and, with a cluster model, the customer's
    cluster (nearest centroid of its ``funnel_embedding``)."""

    prediction: v1.Prediction
    cluster: int | None = None


def serving_inputs(
    states: Sequence[FunnelState], max_sessions: int, max_items: int
) -> dict[str, np.ndarray]:
    """Padded signature inputs for distinct customers with >= 1 kept session: the arrays of the
    model package's encoder (``lens.model.export.serving_inputs``) over each state's kept
    baskets, equal to them (a test checks), from each session's cached feature row
    (``SessionRecord.feature_row``): that encoder's vectorized pass costs as much for one
    customer as for many, and the worker encodes one customer per prediction."""
    B, S, L = len(states), max_sessions, max_items
    if len({state.customer_id for state in states}) != B:
        raise ValueError("serving_inputs: one state per customer in a batch")
    items = np.full((B, S, L), b"", dtype=object)
    features = np.zeros((B, S, len(FEATURE_NAMES)), np.float32)
    counts = np.zeros(B, np.int32)
    for b, state in enumerate(states):
        kept, customer = state.sessions, state.customer_id
        first = max(0, len(kept) - S)
        counts[b] = len(kept) - first
        for s, i in enumerate(range(first, len(kept))):
            record = kept[i]
            features[b, s] = record.feature_row(customer, kept[i - 1] if i else None)
            products = [p.encode() for p, _, _ in record.items[:L]]
            items[b, s, : len(products)] = products
    return {
        "session_items": items,
        "session_features": features,
        "session_count": counts,
        "customer_id": np.array([state.customer_id.encode() for state in states], dtype=object),
    }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _row(values) -> list:
    return np.asarray(values).reshape(-1).tolist()


def prediction_from_outputs(
    state: FunnelState,
    outputs: dict[str, np.ndarray],
    *,
    model_name: str,
    model_version: int,
    model_label: str = "",
) -> v1.Prediction:
    """One customer's Prediction from its row of the next_basket outputs (no batch dim). The
    items go in as dicts and the arrays as lists: a list of messages is copied item by item,
    and indexing a numpy array makes a numpy scalar per item (twice the time, per prediction)."""
    last = state.sessions[-1]
    size = int(outputs.get("basket_size", np.int32(MAX_BASKET)))
    names = [_text(p) for p in _row(outputs["items"])]
    scores = _row(outputs.get("item_scores", np.zeros(len(names))))
    quantities = _row(outputs.get("quantities", np.zeros(len(names))))
    basket = [
        {"product_id": p, "score": scores[i], "quantity": quantities[i]}
        for i, p in enumerate(names[: min(size, MAX_BASKET)])
        if p
    ]
    ranking = []
    if "ranking" in outputs:
        ranked = [_text(p) for p in _row(outputs["ranking"])]
        rscores = _row(outputs.get("ranking_scores", np.zeros(len(ranked))))
        ranking = [{"product_id": p, "score": rscores[i]} for i, p in enumerate(ranked) if p]
    days = float(np.asarray(outputs["days_to_next"]).reshape(-1)[0])
    return v1.Prediction(
        prediction_id=f"{state.customer_id}:{last.session_index}",
        customer_id=state.customer_id,
        store_id=state.expected_store(),
        as_of=to_timestamp(last.timestamp),
        session_index=last.session_index,
        basket=basket,
        ranking=ranking,
        days_to_next=max(0.0, days) if np.isfinite(days) else 0.0,
        model=v1.ModelRef(name=model_name, version=model_version, label=model_label),
    )


class Predictor(Protocol):
    async def predict(self, state: FunnelState) -> Forecast: ...


class ModelPredictor:
    """``Predictor`` over ``serving.client.ModelServerClient`` (coalesces concurrent customers
    into batched Predict calls)."""

    def __init__(
        self,
        client,
        *,
        encoder: Encoder = serving_inputs,
        model_label: str = "",
        routing: "CanaryGuard | None" = None,
        signature: str = "next_basket",
        cluster_model=None,
    ) -> None:
        """``model_label``: the version label to ask for ("" = latest); ``routing``: a canary
        share decides per customer instead (``services.funnel.canary``). ``cluster_model``: a
        ``lens.anomaly.ClusterModel``; when given, ``funnel_embedding`` is called too and the
        forecast carries the customer's cluster."""
        self.client = client
        self.cluster_model = cluster_model
        self.encoder = encoder
        self.model_label = model_label
        self.routing = routing
        self.signature = signature
        self._shape: tuple[int, int] | None = None  # (S, L) of the served signature

    def label_for(self, customer_id: str) -> str:
        return self.routing.label_for(customer_id) if self.routing else self.model_label

    async def input_shape(self) -> tuple[int, int]:
        """(max_sessions, max_basket_items) from the signature metadata; asked once."""
        if self._shape is None:
            _, signatures = await self.client.get_model_metadata()
            dims = signatures[self.signature].inputs["session_items"].tensor_shape.dim
            self._shape = (int(dims[1].size), int(dims[2].size))
        return self._shape

    async def predict(self, state: FunnelState) -> Forecast:
        S, L = await self.input_shape()
        inputs = self.encoder([state], S, L)
        chosen = self.label_for(state.customer_id)
        label = chosen or None
        result = await self.client.predict_rows(
            inputs, signature_name=self.signature, version_label=label
        )
        outputs = {alias: array[0] for alias, array in result.outputs.items()}
        if "days_to_next" not in outputs:
            more = await self.client.predict_rows(
                inputs, signature_name="time_to_next", version_label=label
            )
            outputs["days_to_next"] = more.outputs["days_to_next"][0]
        prediction = prediction_from_outputs(
            state, outputs, model_name=result.model_name, model_version=result.version,
            model_label=chosen,
        )
        cluster = None
        if self.cluster_model is not None:
            embedded = await self.client.predict_rows(
                inputs, signature_name="funnel_embedding", version_label=label
            )
            cluster = self.cluster_model.assign_one(embedded.outputs["embedding"][0])  # [H]
            prediction.customer_segment = cluster
        return Forecast(prediction, cluster)


class PredictionDispatcher:
    """Runs predictions in the background so the stream never waits for the model server.

    ``submit`` starts a prediction for a customer's state snapshot unless one is in flight or
    backing off; on success ``publish(forecast, partition)`` sends it; on failure the error is
    counted and the customer becomes due again after ``retry_s`` (doubling per failure, up to
    16x). The sweep asks ``due(customer)`` for the customers still pending.

    A published prediction clears the customer's pending mark only when the funnel agent applies
    it to the customer's state (its next batch of the partition); until then the customer is not
    due again for ``apply_wait_s``, or every sweep would predict it once more (a flood when the
    sweep is short or the agent lags). After ``apply_wait_s`` without it (a batch that failed,
    a partition that moved) it is due again. A newer session
    submitted meanwhile ends that wait: its prediction is the one pending now, and after a
    failure it is retried on the backoff alone. A newer session submitted while the customer's
    previous prediction is still in flight is predicted as soon as that one is published (not
    at the first sweep after ``apply_wait_s``, which under load is most of a busy customer's
    latency); if that one failed, the sweep retries on the backoff.

    At most ``max_in_flight`` predictions are in flight, fewer while the model server answers
    late (``services.funnel.in_flight``): a call that misses its deadline, or is answered after
    ``slow_after_s`` (the worker passes half the deadline), halves the limit.
    """

    def __init__(
        self,
        predictor: Predictor,
        publish: Callable[[Forecast, int], Awaitable[None]],
        *,
        metrics: FunnelMetrics | None = None,
        max_in_flight: int = 256,
        slow_after_s: float | None = None,
        retry_s: float = 5.0,
        apply_wait_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.predictor = predictor
        self.publish = publish
        self.metrics = metrics
        self.retry_s = retry_s
        self.slow_after_s = slow_after_s
        self.apply_wait_s = apply_wait_s
        self.clock = clock
        self._slots = InFlightLimit(
            max_in_flight,
            on_change=metrics.in_flight_limit.set if metrics is not None else lambda limit: None,
        )
        self._in_flight: dict[str, asyncio.Task] = {}
        self._in_flight_session: dict[str, int] = {}  # customer -> session index being predicted
        self._next: dict[str, tuple[FunnelState, int]] = {}  # newer snapshot waiting for it
        self._retry_at: dict[str, tuple[float, int]] = {}  # customer -> (monotonic time, failures)
        self._published: dict[str, float] = {}  # customer -> monotonic time of its last publish

    def due(self, customer_id: str) -> bool:
        if customer_id in self._in_flight:
            return False
        published = self._published.get(customer_id)
        if published is not None:
            if self.clock() < published + self.apply_wait_s:
                return False
            del self._published[customer_id]
        retry = self._retry_at.get(customer_id)
        return retry is None or self.clock() >= retry[0]

    def submit(self, state: FunnelState, partition: int) -> bool:
        customer = state.customer_id
        if not state.sessions:
            return False
        if customer in self._in_flight:
            if state.sessions[-1].session_index > self._in_flight_session[customer]:
                self._next[customer] = (state, partition)
            return False
        # The apply wait was for an older prediction; left in place, it would hold this
        # one's retries for apply_wait_s after a failure (e.g. a model server that went down).
        self._published.pop(customer, None)
        task = asyncio.get_running_loop().create_task(self._run(state, partition))
        self._in_flight[customer] = task
        self._in_flight_session[customer] = state.sessions[-1].session_index
        task.add_done_callback(lambda done: self._landed(customer, done))
        return True

    def _landed(self, customer: str, task: asyncio.Task) -> None:
        del self._in_flight[customer], self._in_flight_session[customer]
        waiting = self._next.pop(customer, None)
        if waiting is not None and not task.cancelled() and customer not in self._retry_at:
            self.submit(*waiting)

    async def _run(self, state: FunnelState, partition: int) -> None:
        customer = state.customer_id
        started = await self._slots.acquire()
        outcome = Outcome.FAILED  # also when cancelled
        try:
            start = time.perf_counter()
            try:
                forecast = await self.predictor.predict(state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: count, retry later
                code = getattr(getattr(exc, "code", None), "name", type(exc).__name__)
                if code == "DEADLINE_EXCEEDED":
                    outcome = Outcome.MISSED
                failures = self._retry_at.get(customer, (0.0, 0))[1] + 1
                pause = self.retry_s * min(2 ** (failures - 1), 16)
                self._retry_at[customer] = (self.clock() + pause, failures)
                if self.metrics is not None:
                    self.metrics.model_errors.labels(str(code)).inc()
                log.warning("prediction for %s failed (%s: %s); retry in %.1fs",
                            customer, code, exc, pause)
                return
            took = time.perf_counter() - start
            late = self.slow_after_s is not None and took > self.slow_after_s
            outcome = Outcome.LATE if late else Outcome.IN_TIME
            if self.metrics is not None:
                self.metrics.prediction_latency.observe(took)
            self._retry_at.pop(customer, None)
        finally:
            self._slots.release(started, outcome)
        await self.publish(forecast, partition)
        self._remember_published(customer)
        if self.metrics is not None:
            model = forecast.prediction.model
            self.metrics.predictions.labels(str(model.version), model.label).inc()

    def _remember_published(self, customer: str) -> None:
        now = self.clock()
        if len(self._published) >= 4096:  # bound the memory: forget marks that have expired
            self._published = {c: t for c, t in self._published.items()
                               if now < t + self.apply_wait_s}
        self._published[customer] = now

    async def close(self) -> None:
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
