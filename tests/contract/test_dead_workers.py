"""Dead workers' leases, the start of an attempt, the delivery guarantee and the
shared load (issue #17, items 1, 3 and 7)."""

from __future__ import annotations

from datetime import datetime

import pytest
from store_builders import T0, claim, current, done, endpoint, job, runs_of, secs

from cadenza.domain.model import Delivery, Endpoint, RunStatus
from cadenza.ports import Store

pytestmark = pytest.mark.anyio


async def seed(store: Store, *deliveries: Delivery, at: datetime = T0) -> list[Endpoint]:
    j = job()
    eps = [endpoint(j, name=f"e{i}", next_run_at=at, delivery=d) for i, d in enumerate(deliveries)]
    async with store.transaction() as tx:
        await tx.insert_job(j)
        for ep in eps:
            await tx.insert_endpoint(ep)
    return eps


async def test_the_delivery_guarantee_is_stored(store: Store) -> None:
    most, least = await seed(store, Delivery.AT_MOST_ONCE, Delivery.AT_LEAST_ONCE)
    assert (await current(store, most)).delivery is Delivery.AT_MOST_ONCE
    assert (await current(store, least)).delivery is Delivery.AT_LEAST_ONCE


async def test_a_dead_workers_leases_are_freed_before_they_expire(store: Store) -> None:
    eps = await seed(store, Delivery.AT_LEAST_ONCE, Delivery.AT_LEAST_ONCE)
    await claim(store, "dead", T0, limit=1)
    await claim(store, "alive", T0, limit=1)
    swept = await store.free_leases_of(["dead"], T0 + secs(1))
    assert [r.worker_id for r in swept] == ["dead"]
    held = {ep.id: (await current(store, ep)).lease for ep in eps}
    assert sum(lease is None for lease in held.values()) == 1
    assert {lease.owner for lease in held.values() if lease} == {"alive"}
    [again] = await claim(store, "alive", T0 + secs(1))
    assert again.attempt == 2
    assert await store.free_leases_of([], T0 + secs(1)) == []


async def test_every_lease_but_the_survivors_can_be_freed(store: Store) -> None:
    await seed(store, Delivery.AT_LEAST_ONCE, Delivery.AT_LEAST_ONCE)
    await claim(store, "before", T0, limit=1)
    await claim(store, "me", T0, limit=1)
    swept = await store.free_leases_of(None, T0 + secs(1), keep="me")
    assert [r.worker_id for r in swept] == ["before"]
    assert await store.free_leases_of(None, T0 + secs(1), keep="me") == []


async def test_an_attempt_never_started_is_lost_and_runs_again(store: Store) -> None:
    await seed(store, Delivery.AT_MOST_ONCE)
    await claim(store, "dead", T0)
    [run] = await store.free_leases_of(["dead"], T0 + secs(1))
    assert run.status is RunStatus.LOST
    assert "never sent" in run.error
    [again] = await claim(store, "w2", T0 + secs(1))
    assert (again.scheduled_for, again.attempt) == (T0, 2)


async def test_an_at_least_once_attempt_never_started_is_lost_and_runs_again(
    store: Store,
) -> None:
    await seed(store, Delivery.AT_LEAST_ONCE)
    await claim(store, "dead", T0)
    [run] = await store.free_leases_of(["dead"], T0 + secs(1))
    assert run.status is RunStatus.LOST
    assert "never sent" in run.error
    [again] = await claim(store, "w2", T0 + secs(1))
    assert (again.scheduled_for, again.attempt) == (T0, 2)


async def test_starts_are_recorded_in_one_call_per_batch(store: Store) -> None:
    """The worker marks the runs starting together in one write: each claim of the
    batch is then told apart from a never-started one."""
    eps = await seed(store, Delivery.AT_LEAST_ONCE, Delivery.AT_LEAST_ONCE, Delivery.AT_MOST_ONCE)
    claims = await claim(store, "dead", T0)
    assert await store.mark_started("dead", claims[:2], T0 + secs(0.1)) == []
    swept = await store.free_leases_of(["dead"], T0 + secs(1))
    by_endpoint = {r.endpoint_id: r.status for r in swept}
    started = {c.endpoint.id for c in claims[:2]}
    assert by_endpoint == {
        ep.id: RunStatus.UNKNOWN if ep.id in started else RunStatus.LOST for ep in eps
    }


async def test_a_started_at_least_once_attempt_is_unknown_and_sent_again(store: Store) -> None:
    await seed(store, Delivery.AT_LEAST_ONCE)
    [cl] = await claim(store, "dead", T0)
    assert await store.mark_started("dead", [cl], T0 + secs(0.1)) == []
    [run] = await store.sweep_expired(T0 + secs(60))
    assert (run.status, run.started_at) == (RunStatus.UNKNOWN, T0 + secs(0.1))
    [again] = await claim(store, "w2", T0 + secs(60))
    assert (again.scheduled_for, again.attempt) == (T0, 2)


async def test_a_started_at_most_once_attempt_is_unknown_and_never_sent_again(
    store: Store,
) -> None:
    [ep] = await seed(store, Delivery.AT_MOST_ONCE)
    [cl] = await claim(store, "dead", T0)
    assert await store.mark_started("dead", [cl], T0) == []
    [run] = await store.free_leases_of(["dead"], T0 + secs(1))
    assert run.status is RunStatus.UNKNOWN
    after = await current(store, ep)
    assert after.lease is None
    assert after.next_run_at is not None
    assert after.next_run_at > T0 + secs(1)
    assert (after.attempt, after.failure_count) == (1, 0)
    assert await claim(store, "w2", T0 + secs(1)) == []
    # A zombie's real result still replaces the unknown record, once.
    assert (await store.complete("dead", [done(cl)], T0 + secs(2))).lost == [ep.id]
    assert await runs_of(store, ep) == [(1, RunStatus.SUCCESS)]


async def test_a_result_kept_past_the_takeover_is_recorded_and_changes_no_schedule(
    store: Store,
) -> None:
    """A worker judged dead while it still ran (cut off from the database) writes its
    real result later: it replaces the ``unknown`` record of its attempt, and the
    slot, now the new owner's, is left alone."""
    [ep] = await seed(store, Delivery.AT_LEAST_ONCE)
    [cl] = await claim(store, "cut-off", T0)
    assert await store.mark_started("cut-off", [cl], T0) == []
    await store.free_leases_of(["cut-off"], T0 + secs(8))
    [again] = await claim(store, "w2", T0 + secs(8))
    assert (await store.complete("cut-off", [done(cl)], T0 + secs(9))).lost == [ep.id]
    assert await runs_of(store, ep) == [(1, RunStatus.SUCCESS)]
    after = await current(store, ep)
    assert after.lease is not None
    assert (after.lease.owner, after.lease.epoch, after.attempt) == ("w2", again.epoch, 2)


async def test_a_start_is_refused_when_the_lease_is_not_ours(store: Store) -> None:
    [ep] = await seed(store, Delivery.AT_MOST_ONCE)
    [cl] = await claim(store, "w1", T0)
    assert await store.mark_started("w2", [cl], T0) == [ep.id]
    await store.free_leases_of(["w1"], T0)
    assert await store.mark_started("w1", [cl], T0) == [ep.id]


async def test_a_start_is_fenced_on_the_epoch_of_each_claim(store: Store) -> None:
    """In one batch, a claim of an older lease of the same worker is refused and the
    others are marked: only the current lease's start is recorded."""
    stale_ep, ep = await seed(store, Delivery.AT_LEAST_ONCE, Delivery.AT_LEAST_ONCE)
    stale, _ = await claim(store, "w1", T0)
    await store.free_leases_of(["w1"], T0)
    renewed = await claim(store, "w1", T0 + secs(1))
    assert {c.endpoint.id for c in renewed} == {stale_ep.id, ep.id}
    assert await store.mark_started("w1", [stale, *renewed], T0 + secs(1)) == [stale_ep.id]
    swept = await store.free_leases_of(["w1"], T0 + secs(2))
    assert {r.status for r in swept} == {RunStatus.UNKNOWN}


async def test_the_load_counts_leased_and_due_endpoints(store: Store) -> None:
    assert await store.due_load(T0) == 0
    await seed(store, Delivery.AT_LEAST_ONCE, Delivery.AT_LEAST_ONCE, Delivery.AT_LEAST_ONCE)
    await seed(store, Delivery.AT_LEAST_ONCE, at=T0 + secs(30))
    assert await store.due_load(T0) == 3
    await claim(store, "w1", T0, limit=2)
    assert await store.due_load(T0) == 3
    assert await store.due_load(T0 + secs(30)) == 4
