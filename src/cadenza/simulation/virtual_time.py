"""Virtual time for replays: an asyncio event loop whose clock jumps instead of waiting.

``VirtualTimeLoop`` is a standard selector event loop with one difference: when no
callback is ready and nothing is in flight outside the loop, ``time()`` jumps to the
earliest timer instead of the loop sleeping until it. Everything that waits through
the loop (``asyncio.sleep``, ``asyncio.timeout``, ``call_at``) therefore waits in
virtual time, and the scheduler's five loops, the planner loop and a simulated
dispatcher share one timeline without a single real second passing.

Work in flight outside the loop (a thread of the executor, a store that talks to
SQLite from its own thread) must hold the timeline still, or the replay would depend
on how fast the machine is. Executor jobs are counted here; other sources register a
``busy`` check with ``hold_while``. While one is busy the loop waits for real, and
time stands still until it is done.

A replay on this loop is deterministic: its callbacks run in the same order every
time, so the same inputs give the same history.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any, TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

STALL_AFTER = 60.0
"""Real seconds the loop waits for work in flight (or, with no timer left, for any
event) before it calls the replay stuck. A hang guard only: a store call takes
milliseconds."""
MAX_JUMPS = 5_000_000
"""A runaway guard: a 40-minute replay jumps about 10,000 times."""


class SimulationStalled(RuntimeError):
    """The loop has nothing to wait for, or work in flight never finished."""


class _JumpingSelector(selectors.DefaultSelector):
    """Polls for real; when there is nothing to do, asks its loop to jump instead of
    blocking for ``timeout`` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.on_idle: Callable[[float | None], list[Any]] = lambda _: []

    def select(self, timeout: float | None = None) -> list[Any]:
        events: list[Any] = super().select(0)
        if events or timeout == 0:
            return events
        return self.on_idle(timeout)

    def wait(self, seconds: float) -> list[Any]:
        """Block for real, at most ``seconds``."""
        events: list[Any] = super().select(seconds)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """See the module docstring. ``time()`` starts at 0.0."""

    def __init__(self, *, stall_after: float = STALL_AFTER) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.on_idle = self._idle
        self._selector_ref = selector
        self._stall_after = stall_after
        self._now = 0.0
        self._jumps = 0
        self._executor_jobs = 0
        self._busy_checks: list[Callable[[], bool]] = []
        self._settle_waiters: list[asyncio.Future[None]] = []

    def time(self) -> float:
        return self._now

    def hold_while(self, busy: Callable[[], bool]) -> None:
        """Keep time still whenever ``busy()`` is true (work in flight elsewhere)."""
        self._busy_checks.append(busy)

    def settled(self) -> asyncio.Future[None]:
        """A future done once nothing is left to do at the current instant: every
        task is waiting for a later timer (or for nothing)."""
        waiter = self.create_future()
        self._settle_waiters.append(waiter)
        return waiter

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1

    def _busy(self) -> bool:
        return self._executor_jobs > 0 or any(check() for check in self._busy_checks)

    def _idle(self, timeout: float | None) -> list[Any]:
        """Nothing is ready: wait for work in flight, settle waiters, or jump."""
        if self._busy():
            events = self._selector_ref.wait(self._stall_after)
            if not events:
                raise SimulationStalled(f"Work in flight did not finish in {self._stall_after} s.")
            return events
        if self._settle_waiters:
            waiters, self._settle_waiters = self._settle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return []
        if timeout is None:
            # No timer at all: only another thread could still wake the loop (the
            # executor shutting down at the end, say). Wait for it a while.
            events = self._selector_ref.wait(self._stall_after)
            if not events:
                raise SimulationStalled("Nothing is scheduled and nothing is in flight.")
            return events
        self._jumps += 1
        if self._jumps > MAX_JUMPS:
            raise SimulationStalled(f"Time jumped {MAX_JUMPS} times: a runaway replay.")
        self._now += timeout
        return []


class VirtualClock:
    """The ``Clock`` port on the running ``VirtualTimeLoop``: ``now()`` is ``origin``
    plus the loop's time, to the microsecond (what ``datetime`` holds), so a run
    started by a timer set for its slot starts exactly at the slot."""

    def __init__(self, origin: datetime, loop: asyncio.AbstractEventLoop) -> None:
        self._origin = origin
        self._loop = loop

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=self._loop.time())

    def monotonic(self) -> float:
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    async def sleep_until(self, at: datetime) -> None:
        await self.sleep((at - self.now()).total_seconds())
