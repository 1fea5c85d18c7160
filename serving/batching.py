"""Server-side batching with TensorFlow Serving's batching parameters.

Concurrent Predict requests for the same model version, signature and output set (and the same
non-batch input shapes) wait in one queue; ``num_batch_threads`` workers take a batch when it holds
``max_batch_size`` rows or its oldest request has waited ``batch_timeout_micros``, concatenate every
input along dim 0 (``[sum(b_i), ...]``), run the signature once, check that every output is
batch-major (``[sum(b_i), ...]``) and split the rows back per request.

Requests are never split across batches; a request larger than ``max_batch_size`` is refused with
INVALID_ARGUMENT, and a queue already holding ``max_enqueued_batches`` batches refuses with
UNAVAILABLE, as TensorFlow Serving does.
"""

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from serving.config import BatchingParameters
from serving.errors import ServingError
from serving.servable import PreparedPredict, Servable

__all__ = ["BatchScheduler"]

log = logging.getLogger(__name__)

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclass
class _Task:
    prepared: PreparedPredict
    rows: int
    future: Future
    enqueued: float


@dataclass
class _Queue:
    servable: Servable
    signature_name: str
    output_aliases: tuple[str, ...]
    tasks: deque = field(default_factory=deque)
    rows: int = 0


class BatchScheduler:
    """Queues per (servable, signature, outputs, input shapes) and a pool of batch threads.

    ``on_batch(model, signature, rows)`` is called for every executed batch (for metrics).
    """

    def __init__(
        self,
        params: BatchingParameters,
        on_batch: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.params = params
        self._on_batch = on_batch
        self._queues: dict[tuple, _Queue] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, servable: Servable, prepared: PreparedPredict) -> Future:
        """Enqueue a prepared (``batching=True``) request; the Future yields alias -> array."""
        future: Future = Future()
        rows = prepared.batch_size or 0
        if rows > self.params.max_batch_size:
            future.set_exception(
                ServingError.invalid_argument(
                    f"Task size {rows} is larger than maximum input batch size "
                    f"{self.params.max_batch_size}"
                )
            )
            return future
        shapes = tuple(
            (alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(prepared.inputs.items())
        )
        key = (id(servable), prepared.signature_name, prepared.output_aliases, shapes)
        with self._cond:
            if self._closed:
                future.set_exception(ServingError.unavailable("Server is shutting down"))
                return future
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(servable, prepared.signature_name, prepared.output_aliases)
            max_rows = self.params.max_batch_size
            if math.ceil((queue.rows + rows) / max_rows) > self.params.max_enqueued_batches:
                future.set_exception(ServingError.unavailable(QUEUE_FULL))
                return future
            queue.tasks.append(_Task(prepared, rows, future, time.monotonic()))
            queue.rows += rows
            self._cond.notify()
        return future

    def close(self, timeout_s: float = 10.0) -> None:
        """Run what is queued, then stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    # -- workers ---------------------------------------------------------------------------
    def _next_batch(self) -> tuple[_Queue, list[_Task]] | None:
        timeout = self.params.batch_timeout_s
        max_rows = self.params.max_batch_size
        with self._cond:
            while True:
                now = time.monotonic()
                chosen, chosen_age, wake_at = None, -1.0, None
                for key, queue in self._queues.items():
                    if not queue.tasks:
                        continue
                    oldest = queue.tasks[0].enqueued
                    if queue.rows >= max_rows or now - oldest >= timeout or self._closed:
                        if now - oldest > chosen_age:
                            chosen, chosen_age = key, now - oldest
                    else:
                        deadline = oldest + timeout
                        wake_at = deadline if wake_at is None else min(wake_at, deadline)
                if chosen is not None:
                    queue = self._queues[chosen]
                    batch, rows = [], 0
                    while queue.tasks and rows + queue.tasks[0].rows <= max_rows:
                        task = queue.tasks.popleft()
                        batch.append(task)
                        rows += task.rows
                    if not batch:  # a zero-row first task never blocks; take it alone
                        batch.append(queue.tasks.popleft())
                    queue.rows -= rows
                    if not queue.tasks:
                        del self._queues[chosen]
                    return queue, batch
                if self._closed:
                    return None
                self._cond.wait(None if wake_at is None else max(wake_at - now, 0.0))

    def _work(self) -> None:
        while True:
            picked = self._next_batch()
            if picked is None:
                return
            queue, tasks = picked
            tasks = [t for t in tasks if t.future.set_running_or_notify_cancel()]
            if tasks:
                self._run(queue, tasks)

    def _run(self, queue: _Queue, tasks: list[_Task]) -> None:
        rows = sum(t.rows for t in tasks)
        try:
            if len(tasks) == 1:
                inputs = tasks[0].prepared.inputs
            else:
                inputs = {
                    alias: np.concatenate([t.prepared.inputs[alias] for t in tasks], axis=0)
                    for alias in tasks[0].prepared.inputs
                }
            padded = self._padded_size(rows)
            if padded > rows:
                inputs = {
                    alias: np.concatenate([a, np.repeat(a[:1], padded - rows, axis=0)], axis=0)
                    for alias, a in inputs.items()
                }
            outputs = queue.servable.run(queue.signature_name, inputs, queue.output_aliases)
            for alias, array in outputs.items():
                if array.ndim == 0:
                    raise ServingError.failed_precondition(
                        f"Batched output tensor has 0 dimensions (output {alias}); every output "
                        "must be batch-major to use --enable_batching"
                    )
                if array.shape[0] != padded:
                    raise ServingError.failed_precondition(
                        "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                        f"dimension sizes of the input tensors (output {alias})"
                    )
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the failure
            for task in tasks:
                task.future.set_exception(exc)
            return
        if self._on_batch is not None:
            self._on_batch(queue.servable.name, queue.signature_name, rows)
        start = 0
        for task in tasks:
            stop = start + task.rows
            task.future.set_result({alias: array[start:stop] for alias, array in outputs.items()})
            start = stop

    def _padded_size(self, rows: int) -> int:
        for size in self.params.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows
