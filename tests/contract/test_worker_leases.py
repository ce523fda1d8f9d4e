"""Workers, the leases they hold and the due backlog, on every store."""

from __future__ import annotations

import pytest
from store_builders import OTHER, T0, endpoint, job, secs

from cadenza.ports import Store, WorkerInfo

pytestmark = pytest.mark.anyio


async def _seed(store: Store, tenant: str, count: int) -> None:
    j = job(tenant)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        for i in range(count):
            await tx.insert_endpoint(endpoint(j, name=f"e{i}", next_run_at=T0 + secs(i)))


async def test_leases_are_counted_by_worker_and_by_tenant(store: Store) -> None:
    await _seed(store, "usr_tenant_a", 3)
    await _seed(store, OTHER, 2)
    await store.register_worker(WorkerInfo("w1", "host", 1, T0, T0))
    assert await store.leases_held() == {}
    first = await store.claim_due(
        "w1", T0 + secs(1), lookahead=secs(0), limit=3, lease_margin=secs(5)
    )
    assert len(first) == 3
    await store.claim_due("w2", T0 + secs(10), lookahead=secs(0), limit=10, lease_margin=secs(5))
    held = await store.leases_held()
    assert held == {"w1": 3, "w2": 2}
    assert sum((await store.leases_held(OTHER)).values()) == 2
    assert await store.leases_held("usr_nobody") == {}
    await store.release("w1", first)
    assert (await store.leases_held()).get("w1") is None


async def test_the_due_backlog_counts_unleased_slots_that_have_come(store: Store) -> None:
    await _seed(store, "usr_tenant_a", 5)
    assert await store.count_due(T0 - secs(1), cap=100) == 0
    assert await store.count_due(T0 + secs(2), cap=100) == 3
    assert await store.count_due(T0 + secs(10), cap=4) == 4
    await store.claim_due("w1", T0 + secs(10), lookahead=secs(0), limit=2, lease_margin=secs(5))
    assert await store.count_due(T0 + secs(10), cap=100) == 3
