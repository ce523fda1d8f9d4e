"""Helpers for the REST tests (fixtures are in conftest.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from cadenza.actions.base import Services
from cadenza.actions.identity import issue_api_key
from cadenza.domain.identity import KeyKind, Scope, User
from cadenza.domain.model import Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Completion
from cadenza.testing import FrozenClock

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = b"test-server-secret-0123456789abcdef"
PASSWORD = "correct horse battery"


class CountingWaker:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


@dataclass
class Tenant:
    tenant_id: str
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@functools.cache
def password_hash() -> str:
    return PasswordHash((Argon2Hasher(),)).hash(PASSWORD)


async def make_tenant(
    services: Services,
    email: str,
    scopes: frozenset[Scope] = frozenset({Scope.ADMIN}),
    kind: KeyKind = KeyKind.USER,
) -> Tenant:
    # Argon2 is slow on purpose; fixtures reuse one hash (create_user has its own tests).
    now = services.clock.now()
    user = User(new_id("usr", now), email, password_hash(), now)
    async with services.store.transaction() as tx:
        await tx.insert_user(user)
    _, key = await issue_api_key(
        services.store, services.clock, services.keyring, user.tenant_id, "k", scopes, kind, None
    )
    return Tenant(user.tenant_id, email, key)


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
    services: Services, status: RunStatus = RunStatus.SUCCESS, duration_s: float = 0.2
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
        )
        for c in claims
    ]
    await services.store.complete(
        "w1", [Completion(c, r) for c, r in zip(claims, runs, strict=True)], now
    )
    return runs
