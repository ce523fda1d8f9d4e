"""Concurrent claimers never share a slot."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from store_builders import T0, endpoint, job, secs

from cadenza.adapters.store import SqlStore
from cadenza.domain.model import Endpoint
from cadenza.ports import Store

pytestmark = pytest.mark.anyio

ROWS = 10_000
CLAIMERS = 4


async def seed_endpoints(store: Store, eps: list[Endpoint]) -> None:
    """One bulk insert on SQL stores; per-row inserts elsewhere (tested in test_crud)."""
    if isinstance(store, SqlStore):
        await store.import_endpoints(eps)
        return
    async with store.transaction() as tx:
        for ep in eps:
            await tx.insert_endpoint(ep)


async def drain(store: Store, worker: str) -> list[str]:
    taken: list[str] = []
    while True:
        claims = await store.claim_due(
            worker, T0, lookahead=secs(0), limit=97, lease_margin=secs(5)
        )
        if not claims:
            return taken
        taken.extend(c.endpoint.id for c in claims)
        await asyncio.sleep(0)


@pytest.mark.slow
async def test_four_concurrent_claimers_over_ten_thousand_due_rows_never_share_one(
    store: Store,
) -> None:
    j = job()
    eps = [endpoint(j, next_run_at=T0 - secs(i % 600)) for i in range(ROWS)]
    async with store.transaction() as tx:
        await tx.insert_job(j)
    await seed_endpoints(store, eps)
    results = await asyncio.gather(*(drain(store, f"w{i}") for i in range(CLAIMERS)))
    taken = Counter(i for ids in results for i in ids)
    assert len(taken) == ROWS
    assert max(taken.values()) == 1
