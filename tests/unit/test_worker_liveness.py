"""Dead workers, predecessors on SQLite and the fair share of claims (issue #17,
items 1, 7 and 9), on the step clock and the memory store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from scheduler_support import T0, GatedDispatcher, StepClock, make_endpoint, make_job, rig, seed

from cadenza.domain.model import Delivery, Endpoint, RunStatus
from cadenza.ports import Claim, DispatchResult, RunFilter, WorkerInfo
from cadenza.testing import MemoryStore

pytestmark = pytest.mark.anyio

LONG = timedelta(minutes=10)
"""The dead worker's lease: far beyond any time these tests move the clock."""


async def _ghost_holding(store: MemoryStore, count: int = 1) -> list[str]:
    """``count`` due endpoints leased by "ghost", a worker whose last heartbeat is at T0."""
    job = make_job()
    eps = [make_endpoint(job, T0, every=timedelta(hours=1)) for _ in range(count)]
    await seed(store, job, eps)
    await store.register_worker(WorkerInfo("ghost", "h", 1, T0, T0))
    await store.claim_due("ghost", T0, lookahead=timedelta(0), limit=count, lease_margin=LONG)
    return [e.id for e in eps]


async def _ran_by(store: MemoryStore, endpoint_id: str) -> list[tuple[str | None, RunStatus]]:
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_runs(
            "usr_unit", RunFilter(endpoint_id=endpoint_id), cursor=None, limit=10
        )
    return sorted((r.worker_id, r.status) for r in page.items)


async def test_a_silent_workers_leases_are_freed_once_this_worker_has_beaten_a_while() -> None:
    store = MemoryStore()
    [endpoint] = await _ghost_holding(store)
    async with rig(store=store) as r:
        # Its own heartbeats have gone through for less than 1.5 heartbeats (7.5 s):
        # it does not judge others yet (after an outage every heartbeat is old).
        await r.clock.advance(6)
        assert await _ran_by(store, endpoint) == []
        await r.clock.advance(3)
        runs = await _ran_by(store, endpoint)
        assert runs == [("ghost", RunStatus.LOST), ("unit-worker", RunStatus.SUCCESS)]


async def test_a_fresh_heartbeat_keeps_the_leases() -> None:
    store = MemoryStore()
    [endpoint] = await _ghost_holding(store)
    async with rig(store=store) as r:
        for _ in range(6):
            await store.heartbeat_worker("ghost", r.clock.now())
            await r.clock.advance(4)
        assert await _ran_by(store, endpoint) == []


async def test_a_dead_worker_is_pruned_after_the_bound() -> None:
    store = MemoryStore()
    await _ghost_holding(store)
    async with rig(store=store, prune_after=60.0) as r:
        await r.clock.advance(20)
        assert [w.id for w in await store.list_workers()] == ["ghost", "unit-worker"]
        await r.clock.advance(60)
        assert [w.id for w in await store.list_workers()] == ["unit-worker"]


async def test_the_sole_worker_of_a_database_frees_its_predecessors_leases_at_start() -> None:
    store = MemoryStore()
    [endpoint] = await _ghost_holding(store)
    async with rig(store=store, sole_worker=True) as r:
        await r.clock.advance(0.1)
        runs = await _ran_by(store, endpoint)
        assert runs == [("ghost", RunStatus.LOST), ("unit-worker", RunStatus.SUCCESS)]
        assert [w.id for w in await store.list_workers()] == ["unit-worker"]


async def _share_rig_run(peer_claims: bool) -> GatedDispatcher:
    """Ten endpoints due at T0 + 9 s, this worker and a live peer: how many requests
    this worker sent by T0 + 12 s, with the peer claiming its part or asleep."""
    clock = StepClock()
    store = MemoryStore()
    job = make_job()
    await seed(store, job, [make_endpoint(job, T0 + timedelta(seconds=9)) for _ in range(10)])
    await store.register_worker(WorkerInfo("peer", "h", 2, T0, T0))
    dispatcher = GatedDispatcher(clock)
    async with rig(store=store, clock=clock, dispatcher=dispatcher):
        for _ in range(9):  # the peer beats; this worker learns it is alive
            await store.heartbeat_worker("peer", clock.now())
            await clock.advance(1)
        if peer_claims:
            await store.claim_due(
                "peer", clock.now(), lookahead=timedelta(0), limit=10, lease_margin=LONG
            )
        await clock.advance(3)
        dispatcher.open()
    return dispatcher


async def test_with_another_live_worker_a_claim_takes_only_its_share() -> None:
    assert (await _share_rig_run(peer_claims=True)).calls == 5


async def test_slots_left_late_by_a_sleeping_peer_are_rescued_over_the_share() -> None:
    assert (await _share_rig_run(peer_claims=False)).calls == 10


class _CountingStarts(MemoryStore):
    """Counts the claims in each ``mark_started`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def mark_started(
        self, worker_id: str, claims: Sequence[Claim], now: datetime
    ) -> list[str]:
        self.batches.append(len(claims))
        return await super().mark_started(worker_id, claims, now)


class _Witness:
    """A dispatcher that notes, as each request leaves, whether its start is stored."""

    def __init__(self, store: MemoryStore, clock: StepClock) -> None:
        self.store = store
        self.clock = clock
        self.marked: list[bool] = []

    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        self.marked.append(endpoint.id in self.store._t.started)
        now = self.clock.now()
        return DispatchResult(RunStatus.SUCCESS, now, now, http_status=200)

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("delivery", [Delivery.AT_MOST_ONCE, Delivery.AT_LEAST_ONCE])
async def test_every_attempt_is_recorded_as_started_before_it_leaves(delivery: Delivery) -> None:
    clock = StepClock()
    store = MemoryStore()
    job = make_job()
    await seed(store, job, [make_endpoint(job, T0 + timedelta(seconds=1), delivery=delivery)])
    witness = _Witness(store, clock)
    async with rig(store=store, clock=clock, dispatcher=witness):
        await clock.advance(2)
    assert witness.marked == [True]


async def test_runs_starting_together_share_one_start_mark() -> None:
    clock = StepClock()
    store = _CountingStarts()
    job = make_job()
    due = T0 + timedelta(seconds=1)
    endpoints = [make_endpoint(job, due, delivery=Delivery.AT_MOST_ONCE) for _ in range(20)]
    await seed(store, job, endpoints)
    witness = _Witness(store, clock)
    async with rig(store=store, clock=clock, dispatcher=witness):
        await clock.advance(2)
    assert witness.marked == [True] * 20
    assert sum(store.batches) == 20
    assert len(store.batches) <= 2  # the first start alone, then all that queued behind it
