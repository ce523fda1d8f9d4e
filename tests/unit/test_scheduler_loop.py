"""The worker loop on a step clock, a memory store and fake dispatchers: what runs,
when, with which fields, and what a shutdown leaves behind."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from scheduler_support import (
    T0,
    TENANT,
    GatedDispatcher,
    StepClock,
    make_endpoint,
    make_job,
    rig,
    seed,
    settle,
)

from cadenza.domain import lifecycle
from cadenza.domain.model import IntervalHint, PlanSource, RunStatus
from cadenza.ports import RunFilter
from cadenza.testing import MemoryStore, Outcome

pytestmark = pytest.mark.anyio

SECOND = timedelta(seconds=1)


async def _runs(store: MemoryStore, endpoint_id: str) -> list:  # type: ignore[type-arg]
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_runs(
            TENANT, RunFilter(endpoint_id=endpoint_id), cursor=None, limit=100
        )
    return sorted(page.items, key=lambda r: (r.scheduled_for, r.attempt))


async def test_a_due_endpoint_runs_exactly_at_its_slot_and_is_replanned() -> None:
    async with rig() as r:
        job = make_job()
        endpoint = make_endpoint(job, T0 + 5 * SECOND)
        await seed(r.store, job, [endpoint])
        await r.clock.advance(6)
        (call,) = r.fake.calls
        (run,) = await _runs(r.store, endpoint.id)
        async with r.store.transaction(readonly=True) as tx:
            state = await tx.get_endpoint(TENANT, endpoint.id)
    assert call.at == call.scheduled_for == T0 + 5 * SECOND
    assert run.scheduled_for == run.started_at == T0 + 5 * SECOND
    assert run.status is RunStatus.SUCCESS
    assert run.source is PlanSource.BASELINE_INTERVAL
    assert (run.attempt, run.missed_slots, run.worker_id) == (1, 0, "unit-worker")
    assert run.id.startswith("run_")
    assert state.lease is None
    assert state.next_run_at == T0 + 15 * SECOND


async def test_runs_start_at_their_slots_never_before() -> None:
    async with rig() as r:
        job = make_job()
        slots = [T0 + timedelta(milliseconds=1000 + 37 * i) for i in range(20)]
        endpoints = [make_endpoint(job, slot) for slot in slots]
        await seed(r.store, job, endpoints)
        for _ in range(40):
            await r.clock.advance(0.05)
        calls = r.fake.calls
    assert sorted(c.at for c in calls) == slots
    assert all(c.at == c.scheduled_for for c in calls)


async def test_completions_are_written_in_batches_not_one_by_one() -> None:
    store = CountingStore()
    async with rig(store=store) as r:
        job = make_job()
        await seed(store, job, [make_endpoint(job, T0 + SECOND) for _ in range(200)])
        await r.clock.advance(1.2)
    assert r.scheduler.stats.completed == 200
    assert sum(store.batches) == 200
    assert len(store.batches) <= 3


async def test_slots_entering_the_window_one_by_one_are_claimed_in_batches_early() -> None:
    store = ClaimLog()
    async with rig(store=store, lookahead=0.5) as r:
        job = make_job()
        slots = [T0 + SECOND + timedelta(milliseconds=10 * i) for i in range(200)]
        await seed(
            store, job, [make_endpoint(job, slot, every=timedelta(hours=1)) for slot in slots]
        )
        r.waker.wake()  # as the action that created them would
        for _ in range(350):
            await r.clock.advance(0.01)
        calls = r.fake.calls
    assert sorted(c.at for c in calls) == slots  # every slot on time
    claimed = [(at, slot) for at, taken in store.claims for slot in taken]
    assert len(claimed) == 200
    assert min(slot - at for at, slot in claimed) >= timedelta(seconds=0.25)
    # One claim per slot as each enters the window would be 200 write transactions.
    assert len([taken for _, taken in store.claims if taken]) <= 40


async def test_a_slot_released_by_a_run_wakes_a_worker_that_meant_to_sleep_longer() -> None:
    store = ClaimLog()
    async with rig(store=store, poll_interval=60.0, lookahead=0.5) as r:
        job = make_job()
        endpoint = make_endpoint(job, T0 + SECOND, every=2 * SECOND)
        await seed(store, job, [endpoint])
        r.waker.wake()
        for _ in range(120):
            await r.clock.advance(0.05)
        calls = r.fake.calls
    # Nothing else is scheduled, so each rest would last the 60 s poll; the flush of
    # each run says when the next slot comes due, and the loop wakes for it.
    assert [c.at for c in calls] == [T0 + SECOND, T0 + 3 * SECOND, T0 + 5 * SECOND]
    assert all(c.at == c.scheduled_for for c in calls)
    # About one claim per slot: a run in hand is no reason to poll the store.
    assert len(store.claims) <= 2 * len(calls)


async def test_a_slot_released_while_the_loop_reads_the_store_is_not_slept_past() -> None:
    clock = StepClock()
    store = LaggingStore(clock, next_due_lag=0.8)
    async with rig(store=store, clock=clock, poll_interval=60.0, lookahead=0.5) as r:
        job = make_job()
        endpoint = make_endpoint(job, T0 + SECOND, every=2 * SECOND)
        await seed(store, job, [endpoint])
        r.waker.wake()
        for _ in range(120):
            await clock.advance(0.05)
        calls = r.fake.calls
    # Each run completes while ``next_due_at`` is under way with an answer read before
    # that flush (its endpoint still leased: nothing due); the rest that follows is
    # capped at the released slot's turn all the same.
    assert [c.at for c in calls] == [T0 + SECOND, T0 + 3 * SECOND, T0 + 5 * SECOND]


async def test_slots_entering_the_window_during_each_claim_are_still_claimed_in_batches() -> None:
    clock = StepClock()
    store = LaggingStore(clock, claim_lag=0.005)
    async with rig(store=store, clock=clock, lookahead=0.5) as r:
        job = make_job()
        # A slot every millisecond, and each claim takes 5 ms: after every claim a
        # few more slots have entered the window.
        slots = [T0 + SECOND + timedelta(milliseconds=i) for i in range(1000)]
        await seed(
            store, job, [make_endpoint(job, slot, every=timedelta(hours=1)) for slot in slots]
        )
        r.waker.wake()
        for _ in range(230):
            await clock.advance(0.01)
        calls = r.fake.calls
    assert sorted(c.at for c in calls) == slots
    claimed = [(at, slot) for at, taken in store.claims for slot in taken]
    assert min(slot - at for at, slot in claimed) >= timedelta(seconds=0.25)
    # Claiming again as soon as the last claim returned took ~4 slots at a time.
    assert len([taken for _, taken in store.claims if taken]) <= 12


async def test_concurrency_is_bounded_globally_and_per_host() -> None:
    clock = StepClock()
    gated = GatedDispatcher(clock)
    async with rig(dispatcher=gated, clock=clock, max_concurrency=5, max_per_host=2) as r:
        job = make_job()
        endpoints = [
            make_endpoint(job, T0 + SECOND, host=f"10.0.0.{i % 4}", every=timedelta(hours=1))
            for i in range(12)
        ]
        await seed(r.store, job, endpoints)
        await clock.advance(1.5)
        assert gated.calls == 5
        gated.open()
        await clock.advance(1.0)
    assert gated.calls == 12
    assert gated.peak_total == 5
    assert max(gated.peak.values()) == 2


async def test_shutdown_releases_claims_that_have_not_started() -> None:
    async with rig(lookahead=5.0) as r:
        job = make_job()
        endpoint = make_endpoint(job, T0 + 3 * SECOND)
        await seed(r.store, job, [endpoint])
        await r.clock.advance(1)
        assert r.scheduler.stats.claimed == 1
    async with r.store.transaction(readonly=True) as tx:
        state = await tx.get_endpoint(TENANT, endpoint.id)
    assert r.scheduler.stats.released == 1
    assert state.lease is None
    assert state.next_run_at == T0 + 3 * SECOND
    assert r.fake.calls == []


async def test_a_dispatcher_that_raises_is_recorded_as_an_error_run() -> None:
    class Broken:
        async def dispatch(self, *_: object) -> None:
            raise RuntimeError("boom")

        async def close(self) -> None:
            return None

    async with rig(dispatcher=Broken()) as r:  # type: ignore[arg-type]
        job = make_job()
        endpoint = make_endpoint(job, T0 + SECOND)
        await seed(r.store, job, [endpoint])
        await r.clock.advance(1.2)
        (run,) = await _runs(r.store, endpoint.id)
    assert run.status is RunStatus.ERROR
    assert run.error == "Dispatcher failed: RuntimeError: boom"


async def test_an_expired_lease_of_a_dead_worker_is_swept_and_its_slot_runs_again() -> None:
    store = MemoryStore()
    job = make_job()
    endpoint = make_endpoint(job, T0)
    await seed(store, job, [endpoint])
    (dead,) = await store.claim_due(
        "dead-worker", T0, lookahead=timedelta(0), limit=1, lease_margin=SECOND
    )
    async with rig(store=store) as r:
        # The lease covers the 5 s timeout plus the 1 s margin.
        await r.clock.advance(9)
        lost, rerun = await _runs(store, endpoint.id)
    assert (lost.status, lost.attempt, lost.worker_id) == (RunStatus.LOST, 1, "dead-worker")
    assert (rerun.status, rerun.attempt, rerun.worker_id) == (
        RunStatus.SUCCESS,
        2,
        "unit-worker",
    )
    assert lost.scheduled_for == rerun.scheduled_for == dead.scheduled_for
    assert r.scheduler.stats.swept == 1


async def test_a_long_queue_keeps_its_leases_alive() -> None:
    clock = StepClock()
    gated = GatedDispatcher(clock)
    async with rig(dispatcher=gated, clock=clock, max_concurrency=1, lease_margin=2.0) as r:
        job = make_job()
        endpoints = [make_endpoint(job, T0 + SECOND, every=timedelta(hours=1)) for _ in range(2)]
        await seed(r.store, job, endpoints)
        # Far beyond the 5 s + 2 s lease of the claim still queued behind the first.
        await clock.advance(30)
        gated.open()
        await clock.advance(1)
        runs = [run for e in endpoints for run in await _runs(r.store, e.id)]
    assert [run.status for run in runs] == [RunStatus.SUCCESS, RunStatus.SUCCESS]
    assert r.scheduler.stats.swept == 0


async def test_a_waker_makes_a_resting_worker_take_a_tightened_schedule_at_once() -> None:
    async with rig(poll_interval=60.0) as r:
        job = make_job()
        endpoint = make_endpoint(job, T0 + SECOND, every=timedelta(minutes=10))
        await seed(r.store, job, [endpoint])
        r.waker.wake()
        await r.clock.advance(2)
        async with r.store.transaction() as tx:
            current = await tx.get_endpoint(TENANT, endpoint.id, for_update=True)
            now = r.clock.now()
            hint = IntervalHint(5 * SECOND, expires_at=now + timedelta(hours=1))
            await tx.update_endpoint(lifecycle.with_interval_hint(current, job, hint, now))
        r.waker.wake()
        await r.clock.advance(4.5)
        runs = await _runs(r.store, endpoint.id)
    assert [run.scheduled_for for run in runs] == [T0 + SECOND, T0 + 6 * SECOND]
    assert runs[1].source is PlanSource.HINT_INTERVAL
    assert runs[1].started_at == runs[1].scheduled_for


async def test_failed_runs_are_recorded_with_the_dispatchers_status() -> None:
    async with rig() as r:
        job = make_job()
        endpoint = make_endpoint(job, T0 + SECOND)
        r.fake.script(endpoint.id, Outcome(RunStatus.FAILURE, http_status=503, error="nope"))
        await seed(r.store, job, [endpoint])
        await r.clock.advance(1.2)
        (run,) = await _runs(r.store, endpoint.id)
        async with r.store.transaction(readonly=True) as tx:
            state = await tx.get_endpoint(TENANT, endpoint.id)
    assert (run.status, run.http_status, run.error) == (RunStatus.FAILURE, 503, "nope")
    assert state.failure_count == 1
    # Backoff: the next slot is two intervals on.
    assert state.next_run_at == T0 + 21 * SECOND


class ClaimLog(MemoryStore):
    """Remembers each claim: when it was made and the slots it took."""

    def __init__(self) -> None:
        super().__init__()
        self.claims: list[tuple[datetime, list[datetime]]] = []

    async def claim_due(self, worker_id, now, **kwargs):  # type: ignore[no-untyped-def]
        claims = await super().claim_due(worker_id, now, **kwargs)
        self.claims.append((now, [c.scheduled_for for c in claims]))
        return claims


class LaggingStore(ClaimLog):
    """``claim_due`` and ``next_due_at`` answer late, by ``claim_lag`` and
    ``next_due_lag`` seconds of the step clock, with what they read at the start."""

    def __init__(self, clock: StepClock, *, claim_lag: float = 0, next_due_lag: float = 0) -> None:
        super().__init__()
        self._clock = clock
        self._claim_lag = claim_lag
        self._next_due_lag = next_due_lag

    async def claim_due(self, worker_id, now, **kwargs):  # type: ignore[no-untyped-def]
        claims = await super().claim_due(worker_id, now, **kwargs)
        await self._clock.sleep(self._claim_lag)
        return claims

    async def next_due_at(self) -> datetime | None:
        answer = await super().next_due_at()
        await self._clock.sleep(self._next_due_lag)
        return answer


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def complete(self, worker_id, completions, now):  # type: ignore[no-untyped-def]
        self.batches.append(len(completions))
        return await super().complete(worker_id, completions, now)


async def test_stop_is_idempotent_and_run_returns() -> None:
    async with rig() as r:
        r.scheduler.stop()
        r.scheduler.stop()
        await settle()
    assert r.scheduler.stats.claimed == 0


def test_options_reject_a_worker_without_an_id() -> None:
    from cadenza.scheduler import SchedulerOptions

    with pytest.raises(ValueError, match="id"):
        SchedulerOptions(worker_id="")
    assert replace(SchedulerOptions(worker_id="w"), max_claimed=7).claim_cap == 7
