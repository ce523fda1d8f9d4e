"""Keyset pages: stable under inserts, filtered, never counted."""

from __future__ import annotations

from datetime import datetime

import pytest
from store_builders import OTHER, T0, TENANT, done, endpoint, job, secs

from cadenza.domain.model import Job, Run, RunStatus
from cadenza.ports import Page, RunFilter, Store

pytestmark = pytest.mark.anyio


async def record_runs(
    store: Store, j: Job, starts: list[datetime], status: RunStatus = RunStatus.SUCCESS
) -> list[Run]:
    """One endpoint per run, claimed and completed, each run started at its time."""
    eps = [endpoint(j, next_run_at=T0) for _ in starts]
    async with store.transaction() as tx:
        for ep in eps:
            await tx.insert_endpoint(ep)
    claims = {
        c.endpoint.id: c
        for c in await store.claim_due(
            "w1", T0, lookahead=secs(0), limit=len(eps), lease_margin=secs(5)
        )
    }
    completions = [done(claims[ep.id], status, at=at) for ep, at in zip(eps, starts, strict=True)]
    assert (await store.complete("w1", completions, starts[-1])).lost == []
    return [c.run for c in completions]


async def new_job(store: Store, tenant: str = TENANT) -> Job:
    j = job(tenant)
    async with store.transaction() as tx:
        await tx.insert_job(j)
    return j


async def runs_page(store: Store, flt: RunFilter, cursor: str | None, limit: int) -> Page[Run]:
    async with store.transaction(readonly=True) as tx:
        return await tx.list_runs(TENANT, flt, cursor=cursor, limit=limit)


async def test_run_pages_continue_without_duplicates_or_gaps_after_inserts(store: Store) -> None:
    j = await new_job(store)
    old = await record_runs(store, j, [T0 + secs(i) for i in range(5)])
    first = await runs_page(store, RunFilter(), None, 2)
    assert first.items == [old[4], old[3]]
    assert first.next_cursor is not None
    await record_runs(store, j, [T0 + secs(100 + i) for i in range(3)])
    second = await runs_page(store, RunFilter(), first.next_cursor, 2)
    assert second.items == [old[2], old[1]]
    third = await runs_page(store, RunFilter(), second.next_cursor, 2)
    assert third.items == [old[0]]
    assert third.next_cursor is None


async def test_an_exact_last_page_has_no_cursor(store: Store) -> None:
    j = await new_job(store)
    runs = await record_runs(store, j, [T0 + secs(i) for i in range(4)])
    first = await runs_page(store, RunFilter(), None, 2)
    last = await runs_page(store, RunFilter(), first.next_cursor, 2)
    assert last.items == [runs[1], runs[0]]
    assert last.next_cursor is None


async def test_runs_filter_by_job_endpoint_status_and_time(store: Store) -> None:
    j1, j2 = await new_job(store), await new_job(store)
    ok = await record_runs(store, j1, [T0 + secs(i) for i in range(3)])
    bad = await record_runs(store, j2, [T0 + secs(10 + i) for i in range(2)], RunStatus.FAILURE)
    foreign = await new_job(store, OTHER)
    await record_runs(store, foreign, [T0 + secs(20)])

    async def ids(flt: RunFilter) -> list[str]:
        return [r.id for r in (await runs_page(store, flt, None, 50)).items]

    assert await ids(RunFilter()) == [r.id for r in (ok + bad)[::-1]]
    assert await ids(RunFilter(job_id=j2.id)) == [bad[1].id, bad[0].id]
    assert await ids(RunFilter(endpoint_id=ok[1].endpoint_id)) == [ok[1].id]
    assert await ids(RunFilter(status=RunStatus.FAILURE)) == [bad[1].id, bad[0].id]
    window = RunFilter(since=T0 + secs(1), until=T0 + secs(10))
    assert await ids(window) == [ok[2].id, ok[1].id]


async def test_job_pages_are_oldest_first_and_stable_under_inserts(store: Store) -> None:
    jobs = [job(created_at=T0 + secs(i), updated_at=T0, id=f"job_{i:04d}") for i in range(5)]
    async with store.transaction() as tx:
        for j in jobs:
            await tx.insert_job(j)
        first = await tx.list_jobs(TENANT, status=None, now=T0, cursor=None, limit=3)
        await tx.insert_job(job(id="job_0099"))
        second = await tx.list_jobs(TENANT, status=None, now=T0, cursor=first.next_cursor, limit=3)
    assert first.items == jobs[:3]
    assert [j.id for j in second.items] == ["job_0003", "job_0004", "job_0099"]
    assert second.next_cursor is None


async def test_a_limit_below_one_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await runs_page(store, RunFilter(), None, 0)
