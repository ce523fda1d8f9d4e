"""The virtual-time event loop: sleeps pass at once and in order, and work in flight
outside the loop holds the clock still."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.simulation.virtual_time import SimulationStalled, VirtualClock, VirtualTimeLoop

ORIGIN = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _run(main: object, **loop_options: float) -> object:
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(**loop_options)) as runner:
        return runner.run(main)  # type: ignore[arg-type]


def test_concurrent_sleeps_of_hours_wake_in_deadline_order_at_their_exact_times() -> None:
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        woke.append((name, asyncio.get_running_loop().time()))

    async def main() -> None:
        await asyncio.gather(sleeper("hour", 3600), sleeper("second", 1), sleeper("minute", 60))

    _run(main())
    assert woke == [("second", 1.0), ("minute", 60.0), ("hour", 3600.0)]


def test_timeouts_expire_in_virtual_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.Event().wait()
        return loop.time()

    assert _run(main()) == 30.0


def test_settled_waits_for_everything_due_now_and_lets_no_time_pass() -> None:
    steps: list[int] = []

    async def busy_now() -> None:
        for step in range(50):
            steps.append(step)
            await asyncio.sleep(0)

    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        now = asyncio.create_task(busy_now())
        later = asyncio.create_task(asyncio.sleep(10))
        await loop.settled()
        seen = (len(steps), loop.time())
        await asyncio.gather(now, later)
        return seen

    assert _run(main()) == (50, 0.0)


def _slow_elsewhere() -> None:
    """Real work in another thread that lets the loop's thread run meanwhile."""
    time.sleep(0.05)


def test_a_thread_of_the_executor_holds_the_clock_until_it_is_done() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        timer = asyncio.create_task(asyncio.sleep(0.001))
        await asyncio.to_thread(_slow_elsewhere)
        return loop.time(), timer.done()

    assert _run(main()) == (0.0, False)


def test_a_registered_busy_check_holds_the_clock_while_it_is_true() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        finished = loop.create_future()
        working = threading.Event()
        working.set()
        loop.hold_while(working.is_set)

        def work() -> None:
            _slow_elsewhere()
            working.clear()
            loop.call_soon_threadsafe(finished.set_result, None)

        timer = asyncio.create_task(asyncio.sleep(0.001))
        threading.Thread(target=work).start()
        await finished
        return loop.time(), timer.done()

    assert _run(main()) == (0.0, False)


def test_a_replay_waiting_for_something_that_can_never_happen_stalls_loudly() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationStalled, match="Nothing is scheduled"):
        _run(main(), stall_after=0.01)


def test_the_clock_reads_the_loop_and_lands_exactly_on_an_odd_microsecond() -> None:
    slot = ORIGIN + timedelta(seconds=1234, microseconds=567_891)

    async def main() -> tuple[datetime, datetime, float]:
        clock = VirtualClock(ORIGIN, asyncio.get_running_loop())
        start = clock.now()
        await clock.sleep_until(slot)
        return start, clock.now(), clock.monotonic()

    start, woke, mono = _run(main())  # type: ignore[misc]
    assert start == ORIGIN
    assert woke == slot
    assert mono == pytest.approx(1234.567891)
