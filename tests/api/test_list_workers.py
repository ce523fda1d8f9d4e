"""list_workers: every reader sees the workers; runs in hand count only the caller's
own endpoints, whatever its scopes."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from api_kit import Tenant, add_key, make_job_and_endpoint

from cadenza.actions.base import Services
from cadenza.domain.identity import Scope
from cadenza.ports import WorkerInfo

pytestmark = pytest.mark.anyio


async def test_a_tenant_sees_the_workers_and_only_its_own_runs_in_hand(
    client: httpx2.AsyncClient, services: Services, alice: Tenant, bob: Tenant
) -> None:
    now = services.clock.now()
    await services.store.register_worker(WorkerInfo("w-1", "box-a", 41, now, now))
    await make_job_and_endpoint(client, alice)
    await make_job_and_endpoint(client, bob)
    await make_job_and_endpoint(client, bob)
    due = await services.store.next_due_at()
    assert due is not None
    await services.store.claim_due(
        "w-1", due + timedelta(hours=1), lookahead=timedelta(0), limit=10,
        lease_margin=timedelta(seconds=30),
    )  # fmt: skip
    reader = await add_key(services, alice, frozenset({Scope.RUNS_READ}))
    answer = await client.get("/api/v1/workers", headers=reader)
    assert answer.status_code == 200, answer.text
    [worker] = answer.json()["items"]
    assert worker["id"] == "w-1"
    assert worker["host"] == "box-a"
    assert worker["runs_in_hand"] == 1
    assert worker["heartbeat_age_seconds"] == 0
    admin = await client.get("/api/v1/workers", headers=bob.headers)
    assert admin.json()["items"][0]["runs_in_hand"] == 2


async def test_listing_workers_needs_runs_read(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    writer = await add_key(services, alice, frozenset({Scope.JOBS_WRITE}))
    assert (await client.get("/api/v1/workers", headers=writer)).status_code == 403
