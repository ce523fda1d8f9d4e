"""Retention on every store (memory, SQLite, PostgreSQL): policies are stored per tenant,
prunes delete oldest first in bounded batches and touch nothing they should keep, and
the housekeeper applies a whole policy."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from store_builders import OTHER, T0, TENANT, endpoint, job, run_for, secs

from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.retention_sql import SqlRetentionStore
from cadenza.domain.model import Actor, ActorKind, AuditEvent, Endpoint
from cadenza.domain.retention import RetentionPolicy
from cadenza.ids import new_id
from cadenza.ports import AuditFilter, Completion, NullObserver, RetentionStore, RunFilter, Store
from cadenza.scheduler.retention import Pruner, PrunerOptions
from cadenza.testing import FrozenClock, MemoryRetentionStore, MemoryStore

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)


@pytest.fixture
def retention(store: Store) -> RetentionStore:
    if isinstance(store, SqlStore):
        return SqlRetentionStore(store)
    assert isinstance(store, MemoryStore)
    return MemoryRetentionStore(store)


async def _endpoint(store: Store, tenant: str = TENANT) -> Endpoint:
    j = job(tenant)
    ep = endpoint(j)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    return ep


async def _runs(store: Store, ep: Endpoint, times: list[datetime]) -> None:
    """Record a run of ``ep`` finished at each of ``times`` (its id is made then)."""
    claims = await store.claim_due(
        f"w-{ep.id}", T0, lookahead=secs(0), limit=1, lease_margin=secs(5)
    )
    [claim] = claims
    assert claim.endpoint.id == ep.id
    completions = [
        Completion(claim, run_for(claim, at=t, scheduled_for=t, id=new_id("run", t))) for t in times
    ]
    await store.complete(f"w-{ep.id}", completions, max(times))


async def _run_times(store: Store, ep: Endpoint) -> list[datetime]:
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_runs(
            ep.tenant_id, RunFilter(endpoint_id=ep.id), cursor=None, limit=500
        )
    return sorted(r.scheduled_for for r in page.items)


async def _audits(store: Store, tenant: str, times: list[datetime]) -> None:
    actor = Actor(ActorKind.USER, "usr_x")
    events = [
        AuditEvent(new_id("aud", t), tenant, t, actor, "update_job", "job", "job_x") for t in times
    ]
    async with store.transaction() as tx:
        await tx.insert_audits(events)


async def _audit_count(store: Store, tenant: str) -> int:
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_audit(tenant, AuditFilter(), cursor=None, limit=500)
    return len(page.items)


async def test_a_policy_is_stored_per_tenant_and_replaced_whole(retention: RetentionStore) -> None:
    assert await retention.get_policy(TENANT) is None
    first = RetentionPolicy(
        TENANT, run_days=30, runs_per_endpoint=100, audit_days=365, updated_at=T0
    )
    await retention.put_policy(first)
    await retention.put_policy(RetentionPolicy(OTHER, audit_days=10, updated_at=T0))
    assert await retention.get_policy(TENANT) == first
    replaced = RetentionPolicy(TENANT, run_days=7, updated_at=T0 + DAY)
    await retention.put_policy(replaced)
    assert await retention.get_policy(TENANT) == replaced
    listed = await retention.list_policies(after=None, limit=10)
    assert [p.tenant_id for p in listed] == sorted([TENANT, OTHER])
    assert await retention.list_policies(after=listed[0].tenant_id, limit=10) == listed[1:]


async def test_runs_older_than_the_cutoff_go_in_batches_oldest_first(
    store: Store, retention: RetentionStore
) -> None:
    ep = await _endpoint(store)
    mine = [T0 + i * DAY for i in range(5)]
    await _runs(store, ep, mine)
    theirs = await _endpoint(store, OTHER)
    await _runs(store, theirs, [T0])
    cutoff = T0 + 3 * DAY
    assert await retention.prune_runs_before(TENANT, cutoff, limit=2) == 2
    assert await _run_times(store, ep) == mine[2:]
    assert await retention.prune_runs_before(TENANT, cutoff, limit=2) == 1
    assert await retention.prune_runs_before(TENANT, cutoff, limit=2) == 0
    assert await _run_times(store, ep) == mine[3:]
    assert await _run_times(store, theirs) == [T0]


async def test_only_the_newest_runs_of_each_endpoint_are_kept(
    store: Store, retention: RetentionStore
) -> None:
    a, b = await _endpoint(store), await _endpoint(store)
    times = [T0 + i * DAY for i in range(6)]
    await _runs(store, a, times)
    await _runs(store, b, times[:2])
    assert sorted(await retention.endpoint_ids(TENANT, after=None, limit=10)) == sorted(
        [a.id, b.id]
    )
    assert await retention.prune_runs_beyond(a.id, 2, limit=3) == 3
    assert await retention.prune_runs_beyond(a.id, 2, limit=3) == 1
    assert await retention.prune_runs_beyond(b.id, 2, limit=3) == 0
    assert await _run_times(store, a) == times[4:]
    assert await _run_times(store, b) == times[:2]


async def test_audit_events_older_than_the_cutoff_go_and_others_stay(
    store: Store, retention: RetentionStore
) -> None:
    await _audits(store, TENANT, [T0 + i * DAY for i in range(4)])
    await _audits(store, OTHER, [T0])
    assert await retention.prune_audit_before(TENANT, T0 + 2 * DAY, limit=10) == 2
    assert await _audit_count(store, TENANT) == 2
    assert await _audit_count(store, OTHER) == 1


async def test_the_housekeeper_applies_a_whole_policy_in_small_batches(
    store: Store, retention: RetentionStore
) -> None:
    now = T0 + 100 * DAY
    old, recent = await _endpoint(store), await _endpoint(store)
    await _runs(store, old, [T0 + i * DAY for i in range(10)])
    await _runs(store, recent, [now - timedelta(hours=i) for i in range(1, 8)])
    await _audits(store, TENANT, [T0, now - DAY])
    policy = RetentionPolicy(TENANT, run_days=30, runs_per_endpoint=5, audit_days=60)
    await retention.put_policy(policy)
    pruner = Pruner(retention, FrozenClock(now), NullObserver(), PrunerOptions(batch=3, pause=0))
    done = await pruner.prune_all()
    assert (done.runs, done.audit_events) == (12, 1)
    assert await _run_times(store, old) == []
    assert len(await _run_times(store, recent)) == 5
    assert await _audit_count(store, TENANT) == 1
    again = await pruner.prune_all()
    assert (again.runs, again.audit_events) == (0, 0)
