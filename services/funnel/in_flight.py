"""How many predictions a worker keeps in flight: TCP's congestion window, with late answers as
the loss signal.

    limit = InFlightLimit(maximum=256)
    started = await limit.acquire()          # waits while ``limit.limit`` calls are in flight
    ...the call...
    limit.release(started, Outcome.IN_TIME)  # or LATE, MISSED (no answer by the deadline), FAILED

A fixed limit above what the model server finishes within a call's deadline makes every call
late: the server shares its CPU among all of them, so they slow down together, miss their
deadline together (the server's work on them wasted), their customers back off, the client's
circuit breaker opens, and throughput collapses (measured with ``lens2000r`` on one CPU: 87-98
predictions/s alone, 15-28/s behind a worker with 256 calls in flight and a 2 s deadline;
BENCHMARKS.md). So the limit starts at ``initial`` and grows by one per call answered in time
(doubling per round) until the first late call, halves on a late call, once per overload (a call
that started before the last cut is the same overload, not a new one), and then grows back by one
per round of ``limit`` calls answered in time, up to ``maximum``. The caller says what is late:
the worker counts a call answered after half its deadline (``PredictionDispatcher``), so the
limit comes down before the calls miss it. A missed deadline cuts like a late answer, but only
when some call was answered since the last cut: while nothing is (a server down or hung), the
calls say nothing about its capacity, and an outage would otherwise drive the limit to
``minimum``, from where it grows back one per round. Other failures change nothing.
"""

import asyncio
import enum
import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["InFlightLimit", "Outcome"]


class Outcome(enum.Enum):
    """How a call ended, as the limit sees it."""

    IN_TIME = "answered in time"
    LATE = "answered late"
    MISSED = "no answer by the deadline"
    FAILED = "failed otherwise"


class InFlightLimit:
    """An asyncio semaphore whose size adapts (see the module docstring). ``on_change(limit)``
    is called whenever the limit moves (a metric)."""

    def __init__(
        self,
        maximum: int,
        *,
        initial: int = 16,
        minimum: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[int], None] = lambda limit: None,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum} and {maximum}")
        self.maximum, self.minimum = maximum, minimum
        self.limit = max(minimum, min(initial, maximum))
        self.slow_start = True  # until the first late call
        self.in_flight = 0
        self.clock = clock
        self.on_change = on_change
        self._credit = 0.0  # calls answered in time since the last increase, in units of limit
        self._last_cut = -math.inf
        self._answered_since_cut = True  # the first missed deadline may cut
        self._waiters: deque[asyncio.Future] = deque()
        on_change(self.limit)

    async def acquire(self) -> float:
        """Wait for a free slot and take it; returns the start time ``release`` wants back."""
        while self.in_flight >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                self._wake()  # a slot it was woken for goes to the next one
                raise
        self.in_flight += 1
        return self.clock()

    def release(self, started: float, outcome: Outcome) -> None:
        """Give the slot back. LATE, and MISSED after an answer since the last cut, halve the
        limit (once per overload); IN_TIME grows it by one in slow start, else by 1 / limit."""
        self.in_flight -= 1
        if outcome in (Outcome.IN_TIME, Outcome.LATE):
            self._answered_since_cut = True
        if outcome is Outcome.LATE or (outcome is Outcome.MISSED and self._answered_since_cut):
            self.slow_start = False
            if started > self._last_cut and self.limit > self.minimum:
                self._set(max(self.minimum, self.limit // 2))
                self._last_cut = self.clock()
                self._answered_since_cut = False
            self._credit = 0.0
        elif outcome is Outcome.IN_TIME and self.limit < self.maximum:
            self._credit += 1.0 if self.slow_start else 1.0 / self.limit
            if self._credit >= 1.0:
                self._credit = 0.0
                self._set(self.limit + 1)
        self._wake()

    def _set(self, limit: int) -> None:
        self.limit = limit
        self.on_change(limit)

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
