"""A virtual clock whose sleeps wait until the test moves time, and builders for the
scheduler's unit tests. Nothing here sleeps in real time or touches the network."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cadenza.domain import lifecycle
from cadenza.domain.model import Endpoint, Job, Method, Request, RunStatus
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import Dispatcher, DispatchResult, Store
from cadenza.scheduler import EventWaker, Scheduler, SchedulerOptions
from cadenza.testing import FakeDispatcher, MemoryStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "usr_unit"


class StepClock:
    """Time stands still until ``advance``; each sleeper wakes exactly at its deadline.

    Unlike ``FrozenClock`` (whose sleeps jump time forward at once), concurrent
    sleepers here share one timeline, which the worker's five loops need.
    """

    def __init__(self, start: datetime = T0) -> None:
        self._start = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._mono)

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), waiter))
        await waiter

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in deadline order and letting the
        event loop settle after each."""
        target = self._mono + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, waiter = heapq.heappop(self._sleepers)
            if waiter.done():
                continue
            self._mono = max(self._mono, when)
            waiter.set_result(None)
            await settle()
        self._mono = target
        await settle()


async def settle(rounds: int = 30) -> None:
    """Let every ready task run until the loop goes quiet (no real time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def make_job() -> Job:
    return Job(new_id("job", T0), TENANT, "unit", T0, T0)


def make_endpoint(
    job: Job,
    first: datetime,
    *,
    every: timedelta = timedelta(seconds=10),
    host: str = "127.0.0.1",
    **fields: Any,
) -> Endpoint:
    endpoint = Endpoint(
        id=new_id("ept", T0),
        job_id=job.id,
        tenant_id=TENANT,
        name="unit",
        request=Request(Method.GET, f"http://{host}/ping", timeout=timedelta(seconds=5)),
        baseline=IntervalSchedule(every, start_at=first),
        created_at=T0,
        updated_at=T0,
        **fields,
    )
    return lifecycle.replan(endpoint, job, T0)


async def seed(store: Store, job: Job, endpoints: list[Endpoint]) -> None:
    async with store.transaction() as tx:
        await tx.insert_job(job)
        for endpoint in endpoints:
            await tx.insert_endpoint(endpoint)


@dataclass
class Rig:
    clock: StepClock
    store: MemoryStore
    dispatcher: Dispatcher
    waker: EventWaker
    scheduler: Scheduler
    job: Job = field(default_factory=make_job)

    @property
    def fake(self) -> FakeDispatcher:
        assert isinstance(self.dispatcher, FakeDispatcher)
        return self.dispatcher


@asynccontextmanager
async def rig(
    *,
    store: MemoryStore | None = None,
    dispatcher: Dispatcher | None = None,
    clock: StepClock | None = None,
    **options: Any,
) -> AsyncIterator[Rig]:
    """A scheduler on a step clock, a memory store and a fake dispatcher, running in
    the test's loop; stopped (gracefully) on exit."""
    clock = clock or StepClock()
    store = store or MemoryStore()
    dispatcher = dispatcher or FakeDispatcher(clock)
    waker = EventWaker()
    values: dict[str, Any] = {"worker_id": "unit-worker"} | options
    scheduler = Scheduler(store, dispatcher, clock, waker, SchedulerOptions(**values))
    running = asyncio.create_task(scheduler.run())
    try:
        await settle()
        yield Rig(clock, store, dispatcher, waker, scheduler)
    finally:
        scheduler.stop()
        for _ in range(100):  # bounded: a stop that never finishes fails the test
            if running.done():
                break
            await clock.advance(0.5)
        await asyncio.wait_for(running, 1)


class GatedDispatcher:
    """Each request waits for the test to ``open()`` it; counts concurrency per host."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.gate = asyncio.Event()
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.calls = 0

    def open(self) -> None:
        self.gate.set()

    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        host = endpoint.request.url.split("/")[2]
        started = self.clock.now()
        self.calls += 1
        self.active[host] = self.active.get(host, 0) + 1
        self.peak[host] = max(self.peak.get(host, 0), self.active[host])
        self.peak_total = max(self.peak_total, sum(self.active.values()))
        try:
            await self.gate.wait()
        finally:
            self.active[host] -= 1
        return DispatchResult(RunStatus.SUCCESS, started, self.clock.now(), http_status=200)

    async def close(self) -> None:
        return None
