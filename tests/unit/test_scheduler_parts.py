"""The worker's parts on their own: the limiter, the starter, the completer and the
waker. No real time passes: clocks are virtual and the loop only settles."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from scheduler_support import T0, StepClock, make_endpoint, make_job, settle

from cadenza.domain import errors
from cadenza.domain.model import PlanSource, Run, RunStatus
from cadenza.ports import Claim, Completed, Completion
from cadenza.scheduler.completer import Completer
from cadenza.scheduler.limiter import Limiter
from cadenza.scheduler.timer import Starter
from cadenza.scheduler.waker import EventWaker

pytestmark = pytest.mark.anyio


async def test_the_limiter_caps_each_host_and_the_total() -> None:
    limiter = Limiter(total=3, per_host=2)
    await limiter.acquire("a")
    await limiter.acquire("a")
    blocked_a = asyncio.ensure_future(limiter.acquire("a"))
    await limiter.acquire("b")
    blocked_c = asyncio.ensure_future(limiter.acquire("c"))
    await settle()
    assert not blocked_a.done()
    assert not blocked_c.done()
    limiter.release("b")
    await settle()
    assert blocked_c.done()
    assert not blocked_a.done()
    limiter.release("a")
    await settle()
    assert blocked_a.done()
    assert limiter.in_use("a") == 2


async def test_a_cancelled_waiter_passes_its_slot_on_and_idle_hosts_are_forgotten() -> None:
    limiter = Limiter(total=10, per_host=1)
    await limiter.acquire("a")
    first = asyncio.ensure_future(limiter.acquire("a"))
    second = asyncio.ensure_future(limiter.acquire("a"))
    await settle()
    first.cancel()
    await settle()
    limiter.release("a")
    await settle()
    assert second.done()
    assert not second.cancelled()
    limiter.release("a")
    assert limiter.in_use("a") == 0
    assert limiter._hosts == {}


@dataclass
class Item:
    due: float
    cancelled: bool = False


async def test_the_starter_launches_items_in_slot_order_once_each_is_due() -> None:
    clock = StepClock()
    launched: list[tuple[float, float]] = []
    starter: Starter[Item] = Starter(
        clock, lambda item: launched.append((item.due, clock.now().timestamp()))
    )
    task = asyncio.ensure_future(starter.run())
    base = T0.timestamp()
    starter.add([Item(base + 3), Item(base + 1)])
    await clock.advance(0.5)
    # An earlier item cuts the starter's nap short.
    starter.add([Item(base + 0.75), Item(base + 2, cancelled=True)])
    await clock.advance(4)
    task.cancel()
    await settle()
    assert launched == [(base + 0.75, base + 0.75), (base + 1, base + 1), (base + 3, base + 3)]
    assert len(starter) == 0


async def test_the_starter_hands_back_what_it_has_not_launched() -> None:
    clock = StepClock()
    starter: Starter[Item] = Starter(clock, lambda item: None)
    task = asyncio.ensure_future(starter.run())
    starter.add([Item(T0.timestamp() + 5)])
    await clock.advance(1)
    task.cancel()
    await settle()
    assert [i.due for i in starter.drain()] == [T0.timestamp() + 5]


class ScriptedStore:
    """``complete`` fails as scripted: a run id that ``poison`` names always
    conflicts; ``outages`` calls fail before anything succeeds. Completion ``n``
    releases its endpoint with a next slot ``n + 1`` seconds after T0."""

    def __init__(self, *, poison: str = "", outages: int = 0) -> None:
        self.poison = poison
        self.outages = outages
        self.written: list[list[str]] = []

    async def complete(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> Completed:
        if self.outages:
            self.outages -= 1
            raise ConnectionError("database is down")
        ids = [c.run.id for c in completions]
        if self.poison in ids:
            raise errors.Conflict("already recorded")
        self.written.append(ids)
        return Completed([], T0 + timedelta(seconds=min(_number(i) for i in ids) + 1))

    async def heartbeat_worker(self, worker_id: str, now: datetime) -> None:
        """The completer's probe: fails while the outage lasts."""
        if self.outages:
            raise ConnectionError("database is down")


def _number(run_id: str) -> int:
    return int(run_id.removeprefix("run_"))


def _completion(n: int) -> Completion:
    endpoint = make_endpoint(make_job(), T0)
    claim = Claim(endpoint, T0, PlanSource.BASELINE_INTERVAL, 1, 1)
    run = Run(
        f"run_{n}",
        endpoint.id,
        endpoint.job_id,
        endpoint.tenant_id,
        T0,
        T0,
        T0,
        RunStatus.SUCCESS,
        PlanSource.BASELINE_INTERVAL,
    )
    return Completion(claim, run)


def _completer(
    store: ScriptedStore,
    clock: StepClock,
    flushed: list[int],
    released: list[datetime | None] | None = None,
) -> Completer:
    def on_flushed(batch: Sequence[Completion], done: Completed) -> None:
        flushed.append(len(batch))
        if released is not None:
            released.append(done.earliest_next_run)

    return Completer(
        store,  # type: ignore[arg-type]
        clock,
        "w",
        interval=0.05,
        max_batch=100,
        on_flushed=on_flushed,
    )


async def test_the_completer_writes_what_arrives_together_in_one_batch() -> None:
    clock = StepClock()
    store = ScriptedStore()
    flushed: list[int] = []
    completer = _completer(store, clock, flushed)
    task = asyncio.ensure_future(completer.run())
    completer.add(_completion(0))
    await settle()
    for n in range(1, 40):
        completer.add(_completion(n))
    await clock.advance(0.05)
    completer.close()
    await clock.advance(0.05)
    await task
    assert [len(batch) for batch in store.written] == [1, 39]
    assert flushed == [1, 39]


async def test_a_conflicting_completion_is_dropped_without_holding_back_the_rest() -> None:
    clock = StepClock()
    store = ScriptedStore(poison="run_3")
    flushed: list[int] = []
    released: list[datetime | None] = []
    completer = _completer(store, clock, flushed, released)
    for n in (3, 4, 5, 2):
        completer.add(_completion(n))
    await completer.flush()
    assert sorted(i for batch in store.written for i in batch) == [f"run_{n}" for n in (2, 4, 5)]
    # Written one by one, the batch still reports the earliest slot it released.
    assert (flushed, released) == ([4], [T0 + timedelta(seconds=3)])


async def test_a_database_outage_is_retried_with_backoff() -> None:
    clock = StepClock()
    store = ScriptedStore(outages=2)
    completer = _completer(store, clock, [])
    completer.add(_completion(0))
    flushing = asyncio.ensure_future(completer.flush())
    await clock.advance(1)
    await flushing
    assert store.written == [["run_0"]]


async def test_a_long_database_outage_keeps_every_completion_until_it_ends() -> None:
    clock = StepClock()
    store = ScriptedStore(outages=60)
    flushed: list[int] = []
    completer = _completer(store, clock, flushed)
    task = asyncio.ensure_future(completer.run())
    for n in range(5):
        completer.add(_completion(n))
        await settle()
    for _ in range(100):  # 200 s of outage, far past the first retries
        await clock.advance(2)
    completer.close()
    await clock.advance(2)
    await task
    assert sorted(i for batch in store.written for i in batch) == [f"run_{n}" for n in range(5)]
    assert sum(flushed) == 5


async def test_a_closed_completer_gives_up_at_its_deadline() -> None:
    clock = StepClock()
    store = ScriptedStore(outages=10**6)
    flushed: list[int] = []
    completer = _completer(store, clock, flushed)
    task = asyncio.ensure_future(completer.run())
    completer.add(_completion(0))
    completer.close(within=5)
    for _ in range(10):
        await clock.advance(1)
    await task
    assert (store.written, flushed) == ([], [1])


async def test_the_waker_coalesces_wake_ups_until_cleared() -> None:
    clock = StepClock()
    waker = EventWaker()
    waker.wake()
    waker.wake()
    assert await waker.wait(clock, 10) is True
    waker.clear()
    waiting = asyncio.ensure_future(waker.wait(clock, 10))
    await clock.advance(3)
    assert not waiting.done()
    waker.wake()
    await settle()
    assert waiting.result() is True
    waker.clear()
    timing_out = asyncio.ensure_future(waker.wait(clock, 2))
    await clock.advance(2)
    assert timing_out.result() is False


async def test_the_waker_can_be_rung_from_another_thread() -> None:
    clock = StepClock()
    waker = EventWaker()
    waiting = asyncio.ensure_future(waker.wait(clock, 10))
    await settle()
    await asyncio.get_running_loop().run_in_executor(None, waker.wake)
    await settle()
    assert waiting.result() is True
