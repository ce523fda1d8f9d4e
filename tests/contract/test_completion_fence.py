"""Completions replan the claimed copy only while it is provably current.

The SQL stores remember what they claimed and write completions fenced on the
revisions of the endpoint and its job (``scheduling``); these tests mix rows that
pass that fence with rows that do not, in one batch, on every store.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from store_builders import T0, TENANT, done, endpoint, job, secs

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import open_store
from cadenza.domain.model import Endpoint, IntervalHint, Pause, PlanSource, RunStatus
from cadenza.ports import Claim, Completed, RunFilter, Store

pytestmark = pytest.mark.anyio

MARGIN = secs(5)


async def seed(store: Store, count: int) -> list[Endpoint]:
    j = job()
    eps = [endpoint(j, name=f"e{i}", next_run_at=T0 - secs(count - i)) for i in range(count)]
    async with store.transaction() as tx:
        await tx.insert_job(j)
        for ep in eps:
            await tx.insert_endpoint(ep)
    return eps


async def claim_all(store: Store, worker: str) -> dict[str, Claim]:
    claims = await store.claim_due(worker, T0, lookahead=secs(0), limit=100, lease_margin=MARGIN)
    return {c.endpoint.id: c for c in claims}


async def current(store: Store, ep: Endpoint) -> Endpoint:
    async with store.transaction(readonly=True) as tx:
        return await tx.get_endpoint(TENANT, ep.id)


async def test_a_hint_on_one_endpoint_leaves_the_rest_of_the_batch_planned_as_usual(
    store: Store,
) -> None:
    plain, hinted, other = await seed(store, 3)
    claims = await claim_all(store, "w1")
    async with store.transaction() as tx:
        live = await tx.get_endpoint(TENANT, hinted.id, for_update=True)
        hint = IntervalHint(secs(10), T0 + secs(3600), "watch closely")
        await tx.update_endpoint(replace(live, interval_hint=hint))
    batch = [done(claims[e.id], at=T0) for e in (plain, hinted, other)]
    # The earliest slot released is the one the hint pulled in.
    assert await store.complete("w1", batch, T0 + secs(1)) == Completed([], T0 + secs(10))
    after = {e.id: await current(store, e) for e in (plain, hinted, other)}
    assert (after[hinted.id].next_run_at, after[hinted.id].next_run_source) == (
        T0 + secs(10),
        PlanSource.HINT_INTERVAL,
    )
    for e in (plain, other):
        slot = claims[e.id].scheduled_for
        assert after[e.id].next_run_at == slot + secs(60)
        assert (after[e.id].lease, after[e.id].success_streak) == (None, 1)


async def test_a_lost_lease_in_a_batch_is_reported_and_the_others_complete(store: Store) -> None:
    kept, taken = await seed(store, 2)
    claims = await claim_all(store, "w1")
    # The sweeper frees both leases; w2 claims them again, and releases one.
    assert len(await store.sweep_expired(T0 + secs(16))) == 2
    again = await store.claim_due(
        "w2", T0 + secs(16), lookahead=secs(0), limit=100, lease_margin=MARGIN
    )
    await store.release("w2", [c for c in again if c.endpoint.id == kept.id])
    mine = await store.claim_due(
        "w1", T0 + secs(17), lookahead=secs(0), limit=100, lease_margin=MARGIN
    )
    [fresh] = mine
    stale = claims[taken.id]
    completed = await store.complete("w1", [done(fresh), done(stale)], T0 + secs(18))
    assert completed.lost == [taken.id]
    released = await current(store, kept)
    assert released.lease is None
    # Only the endpoint still ours was released: its slot is the one reported.
    assert completed.earliest_next_run == released.next_run_at
    assert (await current(store, taken)).lease is not None


async def test_a_job_paused_during_the_run_holds_every_endpoint_of_the_batch(
    store: Store,
) -> None:
    eps = await seed(store, 3)
    claims = await claim_all(store, "w1")
    async with store.transaction() as tx:
        j = await tx.get_job(TENANT, eps[0].job_id, for_update=True)
        await tx.update_job(replace(j, pause=Pause(T0 + secs(900), "freeze")))
    assert (await store.complete("w1", [done(c) for c in claims.values()], T0 + secs(1))).lost == []
    for e in eps:
        after = await current(store, e)
        assert (after.next_run_at, after.next_run_source) == (T0 + secs(900), PlanSource.PAUSED)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_another_store_object_completes_what_this_one_claimed(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, secret_key: str
) -> None:
    url: str = request.getfixturevalue(f"{kind}_url")
    claimer = await open_store(url, FernetSecretBox(secret_key))
    completer = await open_store(url, FernetSecretBox(secret_key))
    try:
        eps = await seed(claimer, 2)
        claims = await claim_all(claimer, "w1")
        batch = [done(c, RunStatus.FAILURE) for c in claims.values()]
        assert (await completer.complete("w1", batch, T0 + secs(1))).lost == []
        for e in eps:
            after = await current(claimer, e)
            assert (after.lease, after.failure_count) == (None, 1)
            assert after.next_run_at == claims[e.id].scheduled_for + secs(120)
        async with claimer.transaction(readonly=True) as tx:
            page = await tx.list_runs(TENANT, RunFilter(), cursor=None, limit=10)
        assert len(page.items) == 2
    finally:
        await claimer.close()
        await completer.close()


async def test_a_batch_spanning_several_jobs_is_claimed_and_completed_whole(
    store: Store,
) -> None:
    jobs = [job(name=f"job {n}") for n in range(3)]
    eps = [
        endpoint(j, name=f"{j.name} e{i}", next_run_at=T0 - secs(i)) for j in jobs for i in (1, 2)
    ]
    async with store.transaction() as tx:
        for j in jobs:
            await tx.insert_job(j)
        for ep in eps:
            await tx.insert_endpoint(ep)
    claims = await claim_all(store, "w1")
    assert sorted(c.endpoint.job_id for c in claims.values()) == sorted(e.job_id for e in eps)
    paused = jobs[1]
    async with store.transaction() as tx:
        live = await tx.get_job(TENANT, paused.id, for_update=True)
        await tx.update_job(replace(live, pause=Pause(T0 + secs(900), "freeze")))
    completed = await store.complete("w1", [done(c) for c in claims.values()], T0 + secs(1))
    assert completed.lost == []
    for e in eps:
        after = await current(store, e)
        assert after.lease is None
        if e.job_id == paused.id:
            assert (after.next_run_at, after.next_run_source) == (T0 + secs(900), PlanSource.PAUSED)
        else:
            assert after.next_run_at == claims[e.id].scheduled_for + secs(60)
