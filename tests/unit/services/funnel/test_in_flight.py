"""The adaptive in-flight limit: a semaphore that halves on late calls and grows back."""


import asyncio

import pytest

from services.funnel.in_flight import InFlightLimit, Outcome


def test_it_holds_callers_beyond_the_limit_until_a_slot_is_released():
    async def main():
        limit = InFlightLimit(2, initial=2)
        first, second = await limit.acquire(), await limit.acquire()
        third = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0.01)
        assert not third.done() and limit.in_flight == 2
        limit.release(first, Outcome.IN_TIME)
        await asyncio.sleep(0.01)
        assert third.done() and limit.in_flight == 2
        limit.release(second, Outcome.IN_TIME)
        limit.release(third.result(), Outcome.IN_TIME)
        assert limit.in_flight == 0

    asyncio.run(main())


def test_a_late_call_halves_the_limit_once_per_overload():
    now = [0.0]
    seen = []

    async def main():
        limit = InFlightLimit(64, initial=64, clock=lambda: now[0], on_change=seen.append)
        before = [await limit.acquire() for _ in range(10)]  # all started at t=0
        now[0] = 2.0
        for started in before:  # ten calls of the same overload time out together
            limit.release(started, Outcome.LATE)
        assert limit.limit == 32
        now[0] = 2.5
        started = await limit.acquire()  # a call started after the cut, late again: a new one
        now[0] = 4.0
        limit.release(started, Outcome.LATE)
        assert limit.limit == 16

    asyncio.run(main())
    assert seen == [64, 32, 16]


def test_it_grows_back_by_one_per_round_of_timely_calls_up_to_the_maximum():
    async def main():
        limit = InFlightLimit(8, initial=8, clock=lambda: 0.0)
        limit.release(await limit.acquire(), Outcome.LATE)
        limit.release(await limit.acquire(), Outcome.LATE)  # same overload (no time passed)
        assert limit.limit == 4
        for _ in range(4):
            limit.release(await limit.acquire(), Outcome.IN_TIME)
        assert limit.limit == 5  # one round of 4 answered in time
        for _ in range(200):
            limit.release(await limit.acquire(), Outcome.IN_TIME)
        assert limit.limit == 8

    asyncio.run(main())


def test_it_never_goes_below_the_minimum_and_a_cancelled_waiter_passes_its_slot_on():
    now = [0.0]

    async def main():
        limit = InFlightLimit(4, initial=4, minimum=2, clock=lambda: now[0])
        for _ in range(3):
            now[0] += 1
            limit.release(await limit.acquire(), Outcome.LATE)
        assert limit.limit == 2
        held = [await limit.acquire(), await limit.acquire()]
        cancelled = asyncio.ensure_future(limit.acquire())
        waiting = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0.01)
        limit.release(held[0], Outcome.IN_TIME)  # wakes `cancelled`, cancelled before it runs
        cancelled.cancel()
        await asyncio.sleep(0.01)
        assert waiting.done() and limit.in_flight == 2

    asyncio.run(main())


def test_slow_start_doubles_the_limit_per_round_until_the_first_late_call():
    seen = []

    async def main():
        limit = InFlightLimit(256, clock=lambda: 0.0, on_change=seen.append)
        assert limit.limit == 16
        for _ in range(16):  # one round answered in time
            limit.release(await limit.acquire(), Outcome.IN_TIME)
        assert limit.limit == 32
        limit.release(await limit.acquire(), Outcome.LATE)
        assert limit.limit == 16 and not limit.slow_start
        for _ in range(16):
            limit.release(await limit.acquire(), Outcome.IN_TIME)
        assert limit.limit == 17  # from now on one per round

    asyncio.run(main())
    assert seen[:3] == [16, 17, 18] and max(seen) == 32


def test_missed_deadlines_cut_once_while_nothing_is_answered_and_failures_change_nothing():
    now = [0.0]

    async def main():
        limit = InFlightLimit(64, initial=64, clock=lambda: now[0])
        for _ in range(5):  # a server gone: every call runs into its deadline, one after another
            now[0] += 1
            started = await limit.acquire()
            now[0] += 2
            limit.release(started, Outcome.MISSED)
        assert limit.limit == 32  # one cut, not 64 -> 2
        now[0] += 1
        limit.release(await limit.acquire(), Outcome.FAILED)  # refused: no growth, no cut
        assert limit.limit == 32
        limit.release(await limit.acquire(), Outcome.LATE)  # answered (late): it is overload
        assert limit.limit == 16
        now[0] += 1
        limit.release(await limit.acquire(), Outcome.IN_TIME)
        now[0] += 1
        limit.release(await limit.acquire(), Outcome.MISSED)  # answered since the cut: cuts
        assert limit.limit == 8

    asyncio.run(main())


def test_limits_are_validated():
    with pytest.raises(ValueError):
        InFlightLimit(4, minimum=5)
    with pytest.raises(ValueError):
        InFlightLimit(0)
