"""Request deadlines on shared timers: never early, at most one slice late, and
only their own cancellation turns into ``TimeoutError``."""

from __future__ import annotations

import asyncio

import pytest

from cadenza.adapters.http.deadlines import Deadlines
from cadenza.simulation.virtual_time import VirtualTimeLoop

pytestmark = pytest.mark.anyio

SLICE = 0.01


def test_a_deadline_fires_after_its_time_and_within_one_slice() -> None:
    """On virtual time, so the bound holds however busy the machine is."""

    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(SLICE)
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with deadlines.after(0.03) as deadline:
                await asyncio.sleep(5)
        return deadline.expired, loop.time() - started

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        expired, elapsed = runner.run(main())
    assert expired
    assert 0.03 <= elapsed <= 0.03 + SLICE


async def test_a_block_that_ends_in_time_is_not_cancelled_afterwards() -> None:
    deadlines = Deadlines(SLICE)
    async with deadlines.after(0.02) as deadline:
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # the slice's timer fires with nothing left in it
    assert not deadline.expired
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_deadlines_in_one_slice_share_a_timer_and_expire_together() -> None:
    deadlines = Deadlines(SLICE)
    outcomes: list[str] = []

    async def wait(seconds: float) -> None:
        try:
            async with deadlines.after(seconds):
                await asyncio.sleep(5)
        except TimeoutError:
            outcomes.append("timeout")

    await asyncio.wait_for(asyncio.gather(*(wait(0.02) for _ in range(50))), 5)
    assert outcomes == ["timeout"] * 50


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(SLICE)
    entered = asyncio.Event()

    async def body() -> None:
        async with deadlines.after(10):
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outer_cancellation_during_expiry_is_not_swallowed() -> None:
    deadlines = Deadlines(SLICE)
    deadline = deadlines.after(10)
    entered = asyncio.Event()

    async def body() -> None:
        async with deadline:
            entered.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await entered.wait()
    deadline.expire()  # as the slice's timer does...
    task.cancel()  # ...and, before the task resumes, a request from outside
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadline.expired


async def test_a_deadline_is_entered_once_and_only_in_a_task() -> None:
    deadlines = Deadlines(SLICE)
    deadline = deadlines.after(1)
    async with deadline:
        pass
    with pytest.raises(RuntimeError, match="once"):
        async with deadline:
            pass
    with pytest.raises(ValueError, match="positive"):
        Deadlines(0)
