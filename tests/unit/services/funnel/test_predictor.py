"""Predictor adapter: signature inputs, outputs -> Prediction, and the background dispatcher."""

import asyncio

import grpc
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from lens import v1
from lens.data.features import FEATURE_NAMES
from lens.model.export import serving_inputs as model_serving_inputs
from lens.stream import FunnelState, Sessionizer
from serving.errors import ModelServerError
from services.funnel import FunnelMetrics
from services.funnel.predictor import (
    ModelPredictor,
    PredictionDispatcher,
    prediction_from_outputs,
    serving_inputs,
)
from tests.unit.services.funnel.conftest import closed, line


def state_with_sessions(customer="c1", baskets=(("milk", "bread"), ("tea",))) -> FunnelState:
    sessionizer = Sessionizer()
    state = sessionizer.new_state(customer)
    for n, products in enumerate(baskets):
        tx = f"T{n}"
        for i, product in enumerate(products):
            event = v1.PosEvent.FromString(line(tx, i + 1, customer, product, 86_400 * n + i,
                                                store="S2"))
            sessionizer.on_event(state, event)
        sessionizer.on_event(state, v1.PosEvent.FromString(closed(tx, customer, 86_400 * n + 9,
                                                                  store="S2")))
    return state


def test_serving_inputs_pad_left_aligned_sessions():
    state = state_with_sessions()
    inputs = serving_inputs([state], 3, 4)
    assert inputs["session_items"].shape == (1, 3, 4)  # [B, S, L]
    assert inputs["session_items"][0, 0].tolist() == [b"milk", b"bread", b"", b""]
    assert inputs["session_items"][0, 1].tolist() == [b"tea", b"", b"", b""]
    assert inputs["session_items"][0, 2].tolist() == [b""] * 4
    assert inputs["session_features"].shape == (1, 3, len(FEATURE_NAMES))
    gap = inputs["session_features"][0, 1, FEATURE_NAMES.index("days_since_previous")]
    assert gap == pytest.approx(1.0)  # the second basket came one day (86400 s) later
    assert not inputs["session_features"][0, 2].any()  # padding session
    assert inputs["session_count"].tolist() == [2]
    assert inputs["customer_id"].tolist() == [b"c1"]


def test_serving_inputs_of_many_kept_sessions_are_those_of_all_of_them():
    baskets = [(f"p{n}", f"q{n % 3}") for n in range(12)]
    state = state_with_sessions(baskets=baskets)
    everything = model_serving_inputs({"c1": state.baskets()}, 4, 3)
    inputs = serving_inputs([state], 4, 3)
    assert inputs.keys() == everything.keys()
    for name, array in everything.items():
        np.testing.assert_array_equal(inputs[name], array)
    assert inputs["session_items"][0, 0].tolist() == [b"p8", b"q2", b""]


def test_serving_inputs_equal_the_model_packages_encoder_for_any_history():
    # histories shorter and longer than S, baskets longer than L, gaps from seconds to months
    rng = np.random.default_rng(11)
    sessionizer = Sessionizer()
    states = []
    for c in range(40):
        customer, t = f"c{c}", int(rng.integers(0, 10 * 365)) * 86_400
        state = sessionizer.new_state(customer)
        for n in range(int(rng.integers(1, 25))):
            t += int(rng.choice([5, 3_600, 86_400, 30 * 86_400]) * rng.random()) + 10
            for i in range(int(rng.integers(1, 9))):
                sessionizer.on_event(state, v1.PosEvent.FromString(
                    line(f"T{n}", i + 1, customer, f"p{rng.integers(40)}", t + i)))
            sessionizer.on_event(state, v1.PosEvent.FromString(closed(f"T{n}", customer, t + 9)))
        states.append(state)
    for S, L in ((16, 5), (4, 8)):
        expected = model_serving_inputs({s.customer_id: s.baskets() for s in states}, S, L)
        together = serving_inputs(states, S, L)
        assert together.keys() == expected.keys()
        for name, array in expected.items():
            np.testing.assert_array_equal(together[name], array, err_msg=name)
            for b, state in enumerate(states):  # one customer at a time, as the worker asks
                np.testing.assert_array_equal(serving_inputs([state], S, L)[name], array[[b]],
                                              err_msg=name)


def test_prediction_from_outputs_cuts_the_basket_at_its_size():
    state = state_with_sessions()
    outputs = {
        "items": np.array([b"tea", b"milk", b"jam"], dtype=object),
        "item_scores": np.array([0.9, 0.6, 0.2], np.float32),
        "quantities": np.array([1.0, 2.0, 1.0], np.float32),
        "basket_size": np.int32(2),
        "ranking": np.array([b"tea", b"milk", b"jam", b""], dtype=object),
        "ranking_scores": np.array([0.9, 0.6, 0.2, 0.0], np.float32),
        "days_to_next": np.float32(3.5),
    }
    p = prediction_from_outputs(state, outputs, model_name="lens", model_version=7)
    assert p.prediction_id == "c1:2" and p.session_index == 2 and p.store_id == "S2"
    assert [(i.product_id, i.quantity) for i in p.basket] == [("tea", 1.0), ("milk", 2.0)]
    assert [i.product_id for i in p.ranking] == ["tea", "milk", "jam"]
    assert p.days_to_next == 3.5 and (p.model.name, p.model.version) == ("lens", 7)


class FakeClient:
    """ModelServerClient's surface as ModelPredictor uses it."""

    def __init__(self, fail_times=0):
        self.fail_times = fail_times
        self.calls = []

    async def get_model_metadata(self):
        from tensorflow.core.protobuf import meta_graph_pb2

        signature = meta_graph_pb2.SignatureDef()
        dims = signature.inputs["session_items"].tensor_shape.dim
        for size in (-1, 4, 5):
            dims.add(size=size)
        return 7, {"next_basket": signature}

    async def predict_rows(self, inputs, *, signature_name, version_label=None):
        self.calls.append((signature_name, {k: v.shape for k, v in inputs.items()}))
        if self.fail_times:
            self.fail_times -= 1
            raise ModelServerError(grpc.StatusCode.UNAVAILABLE, "connection refused")
        from serving.client import PredictResult

        if signature_name == "funnel_embedding":
            return PredictResult(outputs={"embedding": np.array([[0.9, 1.1]], np.float32)},
                                 model_name="lens", version=7, signature_name=signature_name)
        return PredictResult(
            outputs={"items": np.array([[b"tea", b""]], dtype=object),
                     "item_scores": np.array([[0.8, 0.0]], np.float32),
                     "quantities": np.array([[1.0, 0.0]], np.float32),
                     "basket_size": np.array([1], np.int32),
                     "days_to_next": np.array([2.0], np.float32)},
            model_name="lens", version=7, signature_name=signature_name,
        )


def test_model_predictor_reads_the_signature_shape_once():
    client = FakeClient()
    predictor = ModelPredictor(client)

    async def main():
        return [await predictor.predict(state_with_sessions()) for _ in range(2)]

    first, _ = (forecast.prediction for forecast in asyncio.run(main()))
    assert client.calls[0] == ("next_basket", {
        "session_items": (1, 4, 5), "session_features": (1, 4, len(FEATURE_NAMES)),
        "session_count": (1,), "customer_id": (1,),
    })
    assert [i.product_id for i in first.basket] == ["tea"] and first.days_to_next == 2.0
    assert first.model.version == 7


def test_dispatcher_retries_after_failures_and_counts_them():
    registry = CollectorRegistry()
    metrics = FunnelMetrics(registry)
    published = []
    now = [0.0]

    async def publish(forecast, partition):
        published.append((forecast.prediction.prediction_id, partition, forecast.cluster))

    async def main():
        dispatcher = PredictionDispatcher(
            ModelPredictor(FakeClient(fail_times=1)), publish, metrics=metrics, retry_s=5.0,
            clock=lambda: now[0],
        )
        state = state_with_sessions()
        assert dispatcher.submit(state, 3)
        assert not dispatcher.submit(state, 3)  # one in flight per customer
        await asyncio.sleep(0.05)
        assert published == [] and not dispatcher.due("c1")  # failed: backing off
        now[0] = 5.0
        assert dispatcher.due("c1")
        dispatcher.submit(state, 3)
        await asyncio.sleep(0.05)
        await dispatcher.close()

    asyncio.run(main())
    assert published == [("c1:2", 3, None)]
    assert metrics.model_errors.labels("UNAVAILABLE")._value.get() == 1
    assert metrics.predictions.labels("7", "")._value.get() == 1


def test_dispatcher_does_not_repredict_a_published_customer_until_the_apply_wait_ends():
    published = []
    now = [0.0]

    async def publish(forecast, partition):
        published.append(forecast.prediction.prediction_id)

    async def main():
        dispatcher = PredictionDispatcher(
            ModelPredictor(FakeClient()), publish, apply_wait_s=30.0, clock=lambda: now[0]
        )
        state = state_with_sessions()
        dispatcher.submit(state, 0)
        await asyncio.sleep(0.05)
        assert published == ["c1:2"]
        now[0] = 29.0
        assert not dispatcher.due("c1")  # published, not applied yet: the sweep must wait
        now[0] = 30.0
        assert dispatcher.due("c1")  # never applied: lost, predict again
        await dispatcher.close()

    asyncio.run(main())


def test_slow_or_missed_answers_bring_the_in_flight_limit_down():
    registry = CollectorRegistry()
    metrics = FunnelMetrics(registry)

    class SlowClient(FakeClient):
        async def predict_rows(self, inputs, **kwargs):
            await asyncio.sleep(0.05)
            return await super().predict_rows(inputs, **kwargs)

    async def publish(forecast, partition):
        pass

    async def run(client, slow_after_s):
        dispatcher = PredictionDispatcher(ModelPredictor(client), publish, metrics=metrics,
                                          max_in_flight=64, slow_after_s=slow_after_s)
        dispatcher.submit(state_with_sessions("c1"), 0)
        await asyncio.sleep(0.2)
        await dispatcher.close()

    limit = metrics.in_flight_limit._value.get
    asyncio.run(run(SlowClient(), slow_after_s=1.0))
    assert limit() == 17  # answered in time: grows (slow start: 16 -> 17)
    asyncio.run(run(SlowClient(), slow_after_s=0.01))
    assert limit() == 8  # answered, but after slow_after_s: halved
    deadline = FakeClient(fail_times=1)
    deadline_error = ModelServerError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    async def late(inputs, **kwargs):
        raise deadline_error

    deadline.predict_rows = late
    asyncio.run(run(deadline, slow_after_s=None))
    assert limit() == 8  # missed the deadline: halved (16 -> 8)
    assert metrics.model_errors.labels("DEADLINE_EXCEEDED")._value.get() == 1


def test_model_predictor_assigns_the_nearest_cluster():
    from lens.anomaly import ClusterModel

    clusters = ClusterModel(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    client = FakeClient()
    forecast = asyncio.run(ModelPredictor(client, cluster_model=clusters).predict(
        state_with_sessions()))
    assert forecast.cluster == 1  # (0.9, 1.1) is nearest to (1, 1)
    assert forecast.prediction.customer_segment == 1  # the cluster is the customer's segment
    assert [name for name, _ in client.calls] == ["next_basket", "funnel_embedding"]


def test_a_newer_session_is_retried_on_the_backoff_not_the_apply_wait():
    """The customer's previous prediction was just published; its next session's prediction
    fails (the model server went down): the retry comes after retry_s, not after apply_wait_s."""
    now = [0.0]
    client = FakeClient()

    async def publish(forecast, partition):
        pass

    async def main():
        dispatcher = PredictionDispatcher(ModelPredictor(client), publish, retry_s=1.0,
                                          apply_wait_s=60.0, clock=lambda: now[0])
        dispatcher.submit(state_with_sessions(baskets=(("milk",),)), 0)
        await asyncio.sleep(0.05)
        client.fail_times = 1
        dispatcher.submit(state_with_sessions(), 0)
        await asyncio.sleep(0.05)
        assert not dispatcher.due("c1")  # backing off
        now[0] = 1.0
        assert dispatcher.due("c1")
        await dispatcher.close()

    asyncio.run(main())


def test_a_session_that_closes_during_its_predecessors_prediction_follows_it_at_once():
    """No wait for the apply timeout: the newer session is predicted once the one in
    flight is published; the same or an older session is not predicted twice."""
    published = []

    async def publish(forecast, partition):
        published.append((forecast.prediction.prediction_id, partition))

    async def main():
        dispatcher = PredictionDispatcher(ModelPredictor(FakeClient()), publish,
                                          apply_wait_s=60.0, clock=lambda: 0.0)
        first = state_with_sessions(baskets=(("milk",),))
        assert dispatcher.submit(first, 2)
        assert not dispatcher.submit(first, 2)  # the same session: nothing more to predict
        assert not dispatcher.submit(state_with_sessions(), 2)  # newer: follows the first
        await asyncio.sleep(0.05)
        assert published == [("c1:1", 2), ("c1:2", 2)]
        await dispatcher.close()

    asyncio.run(main())


def test_a_fixed_share_of_customers_is_predicted_by_the_canary_label():
    from services.funnel.config import Canary

    canary = Canary("canary", 0.25)
    customers = [f"c{i}" for i in range(2000)]
    chosen = [c for c in customers if canary.in_canary(c)]
    assert 0.2 < len(chosen) / len(customers) < 0.3  # about the share, by hash
    assert chosen == [c for c in customers if canary.in_canary(c)]  # the same customers each time
    assert not any(Canary("canary", 0.0).in_canary(c) for c in customers)
    assert all(Canary("canary", 1.0).in_canary(c) for c in customers)

    class LabelRecordingClient(FakeClient):
        async def predict_rows(self, inputs, *, signature_name, version_label=None):
            self.labels.append(version_label)
            return await super().predict_rows(inputs, signature_name=signature_name)

    from services.funnel.canary import CanaryGuard

    client = LabelRecordingClient()
    client.labels = []
    guard = CanaryGuard(Canary("canary", 1.0), "stable")
    predictor = ModelPredictor(client, model_label="stable", routing=guard)
    forecast = asyncio.run(predictor.predict(state_with_sessions()))
    assert client.labels == ["canary"] and forecast.prediction.model.label == "canary"
    guard.rolled_back = True  # after a rollback everyone asks for the stable label
    assert asyncio.run(predictor.predict(state_with_sessions())).prediction.model.label == "stable"
    stable = ModelPredictor(client, model_label="stable")
    assert asyncio.run(stable.predict(state_with_sessions())).prediction.model.label == "stable"
