"""Helpers for the REST tests (fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx2

# Re-exported: the REST tests import what they share with the dashboard's from here.
from app_kit import PASSWORD as PASSWORD
from app_kit import START as START
from app_kit import CountingWaker as CountingWaker
from app_kit import Tenant as Tenant
from app_kit import make_tenant as make_tenant
from app_kit import password_hash as password_hash
from cadenza.actions.base import Services
from cadenza.actions.identity import issue_api_key
from cadenza.domain.identity import KeyKind, Scope
from cadenza.domain.model import Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Completion
from cadenza.testing import FrozenClock

SECRET = b"test-server-secret-0123456789abcdef"


async def add_key(
    services: Services,
    tenant: Tenant,
    scopes: frozenset[Scope],
    kind: KeyKind = KeyKind.USER,
    expires_at: datetime | None = None,
) -> dict[str, str]:
    _, key = await issue_api_key(
        services.store,
        services.clock,
        services.keyring,
        tenant.tenant_id,
        "scoped",
        scopes,
        kind,
        expires_at,
    )
    return {"Authorization": f"Bearer {key}"}


def endpoint_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "health",
        "request": {"method": "GET", "url": "https://example.com/health"},
        "baseline": {"interval_seconds": 300},
    }
    body.update(overrides)
    return body


async def make_job_and_endpoint(
    client: httpx2.AsyncClient, tenant: Tenant, **overrides: Any
) -> tuple[str, str]:
    job = await client.post("/api/v1/jobs", json={"name": "site"}, headers=tenant.headers)
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    ep = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints", json=endpoint_body(**overrides), headers=tenant.headers
    )
    assert ep.status_code == 201, ep.text
    return job_id, ep.json()["id"]


async def record_run(
    services: Services,
    status: RunStatus = RunStatus.SUCCESS,
    duration_s: float = 0.2,
    http_attempts: int = 1,
) -> list[Run]:
    """Let every due endpoint run once through the store's own claim/complete path."""
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    due = await services.store.next_due_at()
    if due is not None and due > clock.now():
        clock.set(due)
    now = clock.now()
    claims = await services.store.claim_due(
        "w1", now, lookahead=timedelta(seconds=1), limit=100, lease_margin=timedelta(seconds=30)
    )
    runs = [
        Run(
            id=new_id("run", now),
            endpoint_id=c.endpoint.id,
            job_id=c.endpoint.job_id,
            tenant_id=c.endpoint.tenant_id,
            scheduled_for=c.scheduled_for,
            started_at=now,
            finished_at=now + timedelta(seconds=duration_s),
            status=status,
            source=c.source,
            attempt=c.attempt,
            http_status=200 if status is RunStatus.SUCCESS else 500,
            worker_id="w1",
            http_attempts=http_attempts,
        )
        for c in claims
    ]
    await services.store.complete(
        "w1", [Completion(c, r) for c, r in zip(claims, runs, strict=True)], now
    )
    return runs
