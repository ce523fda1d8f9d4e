"""Claims, completions, leases and the sweeper (SCHEDULING.md §3)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from store_builders import T0, TENANT, claim, current, done, endpoint, job, run_for, runs_of, secs

from cadenza.domain import errors
from cadenza.domain.model import Endpoint, Pause, PlanSource, ResponseCapture, RunStatus
from cadenza.ports import Completed, Completion, Store

pytestmark = pytest.mark.anyio


async def seed(store: Store, *due: datetime | None) -> list[Endpoint]:
    j = job()
    eps = [endpoint(j, name=f"e{i}", next_run_at=at) for i, at in enumerate(due)]
    async with store.transaction() as tx:
        await tx.insert_job(j)
        for ep in eps:
            await tx.insert_endpoint(ep)
    return eps


async def test_due_endpoints_are_claimed_oldest_first_within_the_lookahead(store: Store) -> None:
    a, b, c, _later, _never = await seed(
        store, T0 - secs(1), T0 - secs(30), T0 + secs(0.4), T0 + secs(2), None
    )
    claims = await claim(store, "w1", T0)
    assert [cl.endpoint.id for cl in claims] == [b.id, a.id, c.id]
    first = claims[0]
    assert first.scheduled_for == b.next_run_at
    assert first.source is PlanSource.BASELINE_INTERVAL
    assert first.attempt == 1
    assert first.endpoint.lease is not None
    assert first.endpoint.lease.owner == "w1"
    assert first.endpoint.lease.epoch == first.epoch
    # timeout 10 s × 1 attempt, plus the margin
    assert first.endpoint.lease.until == T0 + secs(15)
    assert (await current(store, b)).lease == first.endpoint.lease


async def test_the_limit_takes_the_oldest(store: Store) -> None:
    eps = await seed(store, *(T0 - secs(i) for i in range(5)))
    claims = await claim(store, "w1", T0, limit=2)
    assert [cl.endpoint.id for cl in claims] == [eps[4].id, eps[3].id]


async def test_leased_endpoints_are_not_claimed_twice(store: Store) -> None:
    await seed(store, T0, T0)
    assert len(await claim(store, "w1", T0)) == 2
    assert await claim(store, "w2", T0 + secs(1)) == []


async def test_every_claim_bumps_the_lease_epoch(store: Store) -> None:
    await seed(store, T0)
    [first] = await claim(store, "w1", T0)
    await store.release("w1", [first])
    [second] = await claim(store, "w1", T0)
    assert second.epoch == first.epoch + 1
    assert second.attempt == first.attempt


async def test_completion_records_the_run_replans_and_releases(store: Store) -> None:
    [ep] = await seed(store, T0)
    [cl] = await claim(store, "w1", T0)
    completion = done(cl, RunStatus.FAILURE)
    completed = await store.complete("w1", [completion], T0 + secs(1))
    after = await current(store, ep)
    assert completed == Completed([], after.next_run_at)
    assert after.lease is None
    assert after.failure_count == 1
    assert after.last_status is RunStatus.FAILURE
    assert after.last_scheduled_for == T0
    # interval 60 s doubled once by the failure backoff
    assert after.next_run_at == T0 + secs(120)
    async with store.transaction() as tx:
        assert await tx.get_run(TENANT, completion.run.id) == completion.run


async def test_completion_replans_from_state_written_during_the_run(store: Store) -> None:
    [ep] = await seed(store, T0)
    [cl] = await claim(store, "w1", T0)
    async with store.transaction() as tx:
        live = await tx.get_endpoint(TENANT, ep.id, for_update=True)
        await tx.update_endpoint(replace(live, pause=Pause(T0 + secs(600), "maintenance")))
    await store.complete("w1", [done(cl)], T0 + secs(1))
    after = await current(store, ep)
    assert after.next_run_at == T0 + secs(600)
    assert after.next_run_source is PlanSource.PAUSED


async def test_a_duplicate_run_fails_the_whole_batch(store: Store) -> None:
    a, b = await seed(store, T0, T0)
    by_id = {cl.endpoint.id: cl for cl in await claim(store, "w1", T0)}
    ca, cb = by_id[a.id], by_id[b.id]
    first = done(ca)
    await store.complete("w1", [first], T0 + secs(1))
    again = replace(first, run=replace(first.run, id="run_other"))
    with pytest.raises(errors.Conflict):
        await store.complete("w1", [done(cb), again], T0 + secs(2))
    assert (await current(store, b)).lease is not None
    assert await runs_of(store, b) == []


async def test_a_lost_lease_fences_the_late_worker(store: Store) -> None:
    [ep] = await seed(store, T0)
    [a] = await claim(store, "A", T0)
    assert await store.sweep_expired(T0 + secs(10)) == []
    [lost] = await store.sweep_expired(T0 + secs(16))
    assert (lost.status, lost.attempt, lost.scheduled_for) == (RunStatus.LOST, 1, T0)
    assert lost.worker_id == "A"
    assert lost.started_at == T0
    [b] = await claim(store, "B", T0 + secs(17))
    assert (b.attempt, b.scheduled_for) == (2, T0)
    assert (await store.complete("B", [done(b, at=T0 + secs(17))], T0 + secs(18))).lost == []
    replanned = await current(store, ep)
    # A finishes late: its run replaces the 'lost' record, the endpoint is untouched.
    late = done(a, RunStatus.FAILURE, at=T0)
    assert (await store.complete("A", [late], T0 + secs(20))).lost == [ep.id]
    assert await current(store, ep) == replanned
    assert replanned.attempt == 1
    assert replanned.failure_count == 0
    assert await runs_of(store, ep) == [(1, RunStatus.FAILURE), (2, RunStatus.SUCCESS)]


async def test_the_same_worker_cannot_write_with_a_stale_epoch(store: Store) -> None:
    [ep] = await seed(store, T0)
    [old] = await claim(store, "w1", T0)
    await store.sweep_expired(T0 + secs(60))
    [new] = await claim(store, "w1", T0 + secs(61))
    assert await store.extend_leases("w1", [old], T0 + secs(300)) == [ep.id]
    assert (await store.complete("w1", [done(old)], T0 + secs(62))).lost == [ep.id]
    assert (await current(store, ep)).lease == new.endpoint.lease


async def test_the_sweeper_frees_only_expired_leases_up_to_its_limit(store: Store) -> None:
    eps = await seed(store, T0, T0, T0)
    await claim(store, "w1", T0, limit=2)
    assert len(await store.sweep_expired(T0 + secs(16), limit=1)) == 1
    assert len(await store.sweep_expired(T0 + secs(16))) == 1
    assert await store.sweep_expired(T0 + secs(16)) == []
    for ep in eps:
        assert (await current(store, ep)).lease is None
    attempts = sorted([(await current(store, ep)).attempt for ep in eps])
    assert attempts == [1, 2, 2]


async def test_release_frees_the_slot_without_a_run(store: Store) -> None:
    [ep] = await seed(store, T0)
    [cl] = await claim(store, "w1", T0)
    await store.release("w2", [cl])
    assert (await current(store, ep)).lease is not None
    await store.release("w1", [cl])
    after = await current(store, ep)
    assert after.lease is None
    assert (after.next_run_at, after.attempt) == (T0, 1)
    assert await runs_of(store, ep) == []
    [again] = await claim(store, "w2", T0)
    assert (again.scheduled_for, again.attempt) == (T0, 1)


async def test_extend_leases_moves_only_our_leases(store: Store) -> None:
    mine, theirs = await seed(store, T0, T0 - secs(1))
    [cl_theirs] = await claim(store, "w2", T0, limit=1)
    [cl_mine] = await claim(store, "w1", T0, limit=1)
    until = T0 + secs(120)
    lost = await store.extend_leases("w1", [cl_mine, cl_theirs], until)
    assert lost == [theirs.id]
    lease = (await current(store, mine)).lease
    assert lease is not None
    assert lease.until == until
    assert await store.sweep_expired(T0 + secs(60)) != []
    assert (await current(store, mine)).lease == lease


async def test_next_due_at_is_the_earliest_unleased_slot(store: Store) -> None:
    assert await store.next_due_at() is None
    await seed(store, T0 + secs(5), T0 + secs(9), None)
    assert await store.next_due_at() == T0 + secs(5)
    await claim(store, "w1", T0 + secs(5), limit=1)
    assert await store.next_due_at() == T0 + secs(9)


async def test_a_run_keeps_every_recorded_field(store: Store) -> None:
    await seed(store, T0)
    [cl] = await claim(store, "w1", T0)
    response = ResponseCapture(b"\x00{}", "application/json", 4000, True, (("etag", "x"),))
    run = run_for(
        cl,
        RunStatus.TIMEOUT,
        missed_slots=3,
        error="timed out",
        response=response,
        worker_id="w1",
        http_status=None,
    )
    await store.complete("w1", [Completion(cl, run)], T0 + secs(2))
    async with store.transaction() as tx:
        assert await tx.get_run(TENANT, run.id) == run


async def test_a_completion_after_a_heartbeat_replans_and_releases(store: Store) -> None:
    [ep] = await seed(store, T0)
    [cl] = await claim(store, "w1", T0)
    assert await store.extend_leases("w1", [cl], T0 + secs(300)) == []
    assert (await store.complete("w1", [done(cl)], T0 + secs(1))).lost == []
    after = await current(store, ep)
    assert (after.lease, after.next_run_at, after.success_streak) == (None, T0 + secs(60), 1)


async def test_a_job_paused_during_the_run_holds_the_next_run(store: Store) -> None:
    [ep] = await seed(store, T0)
    [cl] = await claim(store, "w1", T0)
    async with store.transaction() as tx:
        j = await tx.get_job(TENANT, ep.job_id, for_update=True)
        await tx.update_job(replace(j, pause=Pause(None, "freeze")))
    await store.complete("w1", [done(cl)], T0 + secs(1))
    after = await current(store, ep)
    assert (after.next_run_at, after.next_run_source) == (None, PlanSource.PAUSED)
