"""The batch scheduler with a fake servable: y = 10 * x, and a record of every executed batch."""

import threading
import time

import grpc
import numpy as np
import pytest

from serving.batching import QUEUE_FULL, BatchScheduler
from serving.config import BatchingParameters
from serving.errors import ServingError
from serving.servable import PreparedPredict


class FakeServable:
    name = "fake"
    version = 1

    def __init__(self, scalar_output=False, gate: threading.Event | None = None):
        self.batches: list[int] = []
        self.scalar_output = scalar_output
        self.gate = gate

    def run(self, signature_name, inputs, output_aliases):
        if self.gate is not None:
            self.gate.wait(5)
        x = inputs["x"]
        self.batches.append(x.shape[0])
        if self.scalar_output:
            return {"y": np.float32(x.sum())}
        return {"y": 10 * x}


def prepared(rows: int, start: int = 0) -> PreparedPredict:
    x = np.arange(start, start + rows, dtype=np.float32).reshape(rows, 1)
    return PreparedPredict("serving_default", {"x": x}, ("y",), rows)


@pytest.fixture
def scheduler_factory():
    made = []

    def make(**kwargs):
        scheduler = BatchScheduler(BatchingParameters(**kwargs))
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


def test_concurrent_requests_share_one_batch_and_get_their_own_rows(scheduler_factory):
    servable = FakeServable()
    scheduler = scheduler_factory(max_batch_size=6, batch_timeout_micros=5_000_000, num_batch_threads=1)
    # 1 + 2 + 3 rows = 6 = max_batch_size: the batch closes when full, long before the timeout.
    futures = [scheduler.submit(servable, prepared(n, start=10 * n)) for n in (1, 2, 3)]
    results = [f.result(timeout=5) for f in futures]
    assert servable.batches == [6]
    np.testing.assert_array_equal(results[0]["y"], [[100.0]])
    np.testing.assert_array_equal(results[1]["y"], [[200.0], [210.0]])
    np.testing.assert_array_equal(results[2]["y"], [[300.0], [310.0], [320.0]])


def test_a_lone_request_runs_after_the_timeout(scheduler_factory):
    servable = FakeServable()
    scheduler = scheduler_factory(max_batch_size=8, batch_timeout_micros=1000, num_batch_threads=1)
    assert scheduler.submit(servable, prepared(2)).result(timeout=5)["y"].shape == (2, 1)
    assert servable.batches == [2]


def test_requests_are_not_split_across_batches(scheduler_factory):
    servable = FakeServable()
    scheduler = scheduler_factory(max_batch_size=4, batch_timeout_micros=50_000, num_batch_threads=1)
    futures = [scheduler.submit(servable, prepared(3)) for _ in range(3)]
    for future in futures:
        future.result(timeout=5)
    assert servable.batches == [3, 3, 3]


def test_too_large_request(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=4)
    with pytest.raises(ServingError) as info:
        scheduler.submit(FakeServable(), prepared(5)).result(timeout=5)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == "Task size 5 is larger than maximum input batch size 4"


def test_full_queue_is_unavailable(scheduler_factory):
    gate = threading.Event()
    servable = FakeServable(gate=gate)
    scheduler = scheduler_factory(
        max_batch_size=2, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=1
    )
    running = scheduler.submit(servable, prepared(2))  # taken by the only thread, blocked on gate
    time.sleep(0.05)
    queued = scheduler.submit(servable, prepared(2))  # fills the one enqueued batch
    refused = scheduler.submit(servable, prepared(1))
    with pytest.raises(ServingError) as info:
        refused.result(timeout=5)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and info.value.message == QUEUE_FULL
    gate.set()
    running.result(timeout=5)
    queued.result(timeout=5)


def test_outputs_must_be_batch_major(scheduler_factory):
    scheduler = scheduler_factory(max_batch_size=4, batch_timeout_micros=0)
    with pytest.raises(ServingError, match="0 dimensions"):
        scheduler.submit(FakeServable(scalar_output=True), prepared(2)).result(timeout=5)


def test_allowed_batch_sizes_pad_and_trim(scheduler_factory):
    servable = FakeServable()
    scheduler = scheduler_factory(
        max_batch_size=8, batch_timeout_micros=0, allowed_batch_sizes=(4, 8), num_batch_threads=1
    )
    result = scheduler.submit(servable, prepared(3)).result(timeout=5)
    assert servable.batches == [4]
    np.testing.assert_array_equal(result["y"], [[0.0], [10.0], [20.0]])


def test_close_runs_what_is_queued():
    servable = FakeServable()
    scheduler = BatchScheduler(BatchingParameters(max_batch_size=8, batch_timeout_micros=10_000_000))
    future = scheduler.submit(servable, prepared(1))
    scheduler.close()
    assert future.result(timeout=5)["y"].shape == (1, 1)
