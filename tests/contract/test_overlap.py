"""Overlap policy on every store: ``allow`` runs overlap up to ``max_in_flight``,
each fenced on its own flight; ``skip`` keeps one run at a time (``flights``)."""

from __future__ import annotations

import pytest
from store_builders import T0, claim, current, done, endpoint, job, runs_of, secs

from cadenza.domain.model import Delivery, Endpoint, Overlap, RunStatus
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ports import Claim, Completed, Store

pytestmark = pytest.mark.anyio


async def seed(store: Store, **kw: object) -> Endpoint:
    j = job()
    # A 10 s interval, first slot at T0; each claim below takes the slot due then.
    ep = endpoint(j, baseline=IntervalSchedule(secs(10)), next_run_at=T0, **kw)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    return ep


def allow(bound: int = 2) -> dict[str, object]:
    return {"overlap": Overlap.ALLOW, "max_in_flight": bound}


async def start(store: Store, worker: str, at_s: float) -> Claim | None:
    """Claim what is due ``at_s`` seconds after T0 and launch it; None if nothing."""
    claims = await claim(store, worker, T0 + secs(at_s))
    if not claims:
        return None
    (taken,) = claims
    assert await store.launch(worker, [taken], taken.scheduled_for) == []
    return taken


async def test_allow_claims_the_next_slot_while_runs_are_in_flight_up_to_the_bound(
    store: Store,
) -> None:
    ep = await seed(store, **allow(2))
    first = await start(store, "w1", 0)
    second = await start(store, "w2", 10)
    assert first is not None
    assert second is not None
    assert (first.scheduled_for, second.scheduled_for) == (T0, T0 + secs(10))
    assert first.epoch != second.epoch
    # Two in flight: the slot due at +20 s waits for one of them to land.
    assert await claim(store, "w1", T0 + secs(19.6)) == []
    assert await store.next_due_at() is None
    assert await store.count_due(T0 + secs(20), cap=10) == 0
    landed = await store.complete("w1", [done(first)], T0 + secs(19.7))
    assert landed == Completed([], T0 + secs(20))
    third = await start(store, "w1", 21)
    assert third is not None
    assert third.scheduled_for == T0 + secs(20)
    assert (await current(store, ep)).last_scheduled_for == T0 + secs(20)


async def test_skip_holds_the_endpoint_until_its_run_completes(store: Store) -> None:
    await seed(store)
    (first,) = await claim(store, "w1", T0)
    assert await claim(store, "w2", T0 + secs(10)) == []
    await store.complete("w1", [done(first)], T0 + secs(9))
    (second,) = await claim(store, "w2", T0 + secs(10))
    assert second.scheduled_for == T0 + secs(10)


async def test_a_swept_flight_fences_its_worker_and_frees_its_place(store: Store) -> None:
    ep = await seed(store, delivery=Delivery.AT_MOST_ONCE, **allow(2))
    first = await start(store, "w1", 0)
    second = await start(store, "w2", 10)
    assert first is not None
    assert second is not None
    swept = await store.free_leases_of(["w1"], T0 + secs(12))
    assert [(r.scheduled_for, r.status) for r in swept] == [(T0, RunStatus.UNKNOWN)]
    # The taken-over worker's late result replaces the sweeper's record, but writes
    # nothing else; the other run is untouched and lands as usual.
    late = await store.complete("w1", [done(first, RunStatus.FAILURE)], T0 + secs(13))
    assert late.lost == [ep.id]
    assert (await current(store, ep)).failure_count == 0
    assert (await store.complete("w2", [done(second)], T0 + secs(14))).lost == []
    assert await runs_of(store, ep) == [(1, RunStatus.FAILURE), (1, RunStatus.SUCCESS)]
    assert (await current(store, ep)).last_status is RunStatus.SUCCESS


async def test_a_dead_workers_at_least_once_flight_runs_its_slot_again(store: Store) -> None:
    ep = await seed(store, **allow(3))
    first = await start(store, "w1", 0)
    second = await start(store, "w2", 10)
    assert first is not None
    assert second is not None
    swept = await store.free_leases_of(["w1"], T0 + secs(12))
    assert [(r.scheduled_for, r.status) for r in swept] == [(T0, RunStatus.UNKNOWN)]
    # w2's run is not held back by it, and the lost slot comes back as attempt 2.
    assert (await store.complete("w2", [done(second)], T0 + secs(13))).lost == []
    (again,) = await claim(store, "w3", T0 + secs(13))
    assert (again.scheduled_for, again.attempt) == (T0, 2)
    assert await store.launch("w3", [again], T0 + secs(13)) == []
    after = await current(store, ep)
    # Running the old slot again does not move the lattice back.
    assert (after.last_scheduled_for, after.next_run_at) == (T0 + secs(10), T0 + secs(20))


async def test_out_of_order_completions_keep_the_newest_outcome(store: Store) -> None:
    ep = await seed(store, **allow(3))
    flights = [await start(store, "w1", at) for at in (0, 10, 20)]
    assert all(f is not None for f in flights)
    a, b, c = (f for f in flights if f is not None)
    # The newest run finishes first, then the older ones fail late.
    await store.complete("w1", [done(c)], T0 + secs(25))
    await store.complete("w1", [done(a, RunStatus.FAILURE)], T0 + secs(26))
    await store.complete("w1", [done(b, RunStatus.TIMEOUT)], T0 + secs(27))
    after = await current(store, ep)
    assert (after.last_status, after.failure_count, after.success_streak) == (
        RunStatus.SUCCESS,
        0,
        1,
    )
    assert (after.last_scheduled_for, after.next_run_at) == (T0 + secs(20), T0 + secs(30))
    assert len(await runs_of(store, ep)) == 3
    assert await claim(store, "w1", T0 + secs(30)) != []


async def test_one_batch_may_land_several_runs_of_one_endpoint(store: Store) -> None:
    ep = await seed(store, **allow(2))
    a = await start(store, "w1", 0)
    b = await start(store, "w1", 10)
    assert a is not None
    assert b is not None
    done_b = done(b, RunStatus.FAILURE)
    landed = await store.complete("w1", [done_b, done(a)], T0 + secs(15))
    assert landed == Completed([], T0 + secs(30))  # one failure: the interval doubles
    after = await current(store, ep)
    assert (after.last_status, after.failure_count) == (RunStatus.FAILURE, 1)
    assert await runs_of(store, ep) == [(1, RunStatus.FAILURE), (1, RunStatus.SUCCESS)]


async def test_a_flight_is_renewed_like_a_lease(store: Store) -> None:
    await seed(store, **allow(2))
    a = await start(store, "w1", 0)
    assert a is not None
    assert await store.extend_leases("w1", [a], T0 + secs(3600)) == []
    assert await store.sweep_expired(T0 + secs(600)) == []
    assert await store.extend_leases("w2", [a], T0 + secs(3600)) == [a.endpoint.id]
    swept = await store.sweep_expired(T0 + secs(3601))
    assert [(r.scheduled_for, r.status) for r in swept] == [(T0, RunStatus.UNKNOWN)]


async def test_launch_is_fenced_on_the_claim(store: Store) -> None:
    await seed(store, **allow(2))
    (taken,) = await claim(store, "w1", T0)
    await store.free_leases_of(["w1"], T0 + secs(1))
    assert await store.launch("w1", [taken], T0 + secs(1)) == [taken.endpoint.id]


async def test_an_endpoint_as_read_counts_its_runs_in_flight(store: Store) -> None:
    ep = await seed(store, delivery=Delivery.AT_MOST_ONCE, **allow(2))
    first = await start(store, "w1", 0)
    assert first is not None
    read = await current(store, ep)
    assert (read.in_flight, read.full) == (1, False)
    second = await start(store, "w2", 10)
    assert second is not None
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_endpoints(
            ep.tenant_id, ep.job_id, include_archived=False, cursor=None, limit=10
        )
    assert [(e.in_flight, e.full) for e in page.items] == [(2, True)]
    await store.complete("w2", [done(second)], T0 + secs(12))
    assert (await current(store, ep)).in_flight == 1
    await store.free_leases_of(["w1"], T0 + secs(13))
    assert (await current(store, ep)).in_flight == 0


async def test_a_dead_workers_cut_flights_each_run_again_one_at_a_time(store: Store) -> None:
    ep = await seed(store, **allow(3))
    for at in (0, 10, 20):
        assert await start(store, "w1", at) is not None
    swept = await store.free_leases_of(["w1"], T0 + secs(21))
    # One lost slot at a time: the others wait, due for the next sweep or launch.
    assert [(r.scheduled_for, r.status) for r in swept] == [(T0, RunStatus.UNKNOWN)]
    again = []
    for at in (22, 23, 24):
        (taken,) = await claim(store, "w2", T0 + secs(at))
        assert await store.launch("w2", [taken], T0 + secs(at)) == []
        again.append((taken.scheduled_for, taken.attempt))
    assert again == [(T0, 2), (T0 + secs(10), 2), (T0 + secs(20), 2)]
    assert await runs_of(store, ep) == [(1, RunStatus.UNKNOWN)] * 3
    assert (await current(store, ep)).in_flight == 3
