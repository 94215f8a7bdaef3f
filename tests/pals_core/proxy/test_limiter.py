"""The admission limiter: first come first served, a limit that moves, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from pals_core.errors import ConfigurationError
from pals_core.proxy import AdmissionLimiter


def test_fifo_admission_and_a_lowered_limit() -> None:
    async def scenario() -> None:
        limiter = AdmissionLimiter(2)
        order: list[int] = []

        async def request(i: int) -> None:
            await limiter.acquire()
            order.append(i)

        await limiter.acquire()
        await limiter.acquire()
        waiters = [asyncio.create_task(request(i)) for i in range(3)]
        await asyncio.sleep(0)
        assert (limiter.active, limiter.waiting, order) == (2, 3, [])
        limiter.set_limit(1)  # below the active count: nothing is interrupted, nobody admitted
        limiter.release()
        await asyncio.sleep(0)
        assert (limiter.active, order) == (1, [])
        limiter.release()
        await asyncio.sleep(0)
        assert (limiter.active, order) == (1, [0])
        limiter.set_limit(3)  # raising admits the next ones at once, in arrival order
        await asyncio.gather(*waiters)
        assert (limiter.active, order) == (3, [0, 1, 2])
        # Its own record: (active, limit) at every change, never more active than the limit
        # except what was running when it was lowered.
        changes = [(active, limit) for _, active, _, limit in limiter.history.entries()]
        assert changes == [
            (0, 2), (1, 2), (2, 2), (2, 1), (1, 1), (0, 1), (1, 1), (1, 3), (2, 3), (3, 3)
        ]  # fmt: skip

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_holds_no_slot() -> None:
    async def scenario() -> None:
        limiter = AdmissionLimiter(1)
        await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limiter.waiting == 0
        # Granted and cancelled in the same turn: the slot is handed back.
        granted = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        limiter.release()
        granted.cancel()
        with pytest.raises(asyncio.CancelledError):
            await granted
        assert limiter.active == 0

    asyncio.run(scenario())


def test_a_waiter_cancelled_as_a_slot_frees_still_ends_cancelled() -> None:
    """A release() in the same loop turn as the cancellation finds the waiter's future already
    cancelled and drops it from the queue; the waiter then ends with CancelledError (not an
    error from the queue), holding no slot."""

    async def scenario() -> None:
        limiter = AdmissionLimiter(1)
        await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        limiter.release()  # before the waiter runs again
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (limiter.active, limiter.waiting) == (0, 0)
        await limiter.acquire()  # the slot is free
        assert limiter.active == 1

    asyncio.run(scenario())


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="integer >= 1"):
        AdmissionLimiter(0)
    limiter = AdmissionLimiter(1)
    with pytest.raises(ConfigurationError, match="got True"):
        limiter.set_limit(True)
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        limiter.release()
