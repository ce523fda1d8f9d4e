"""Helpers for the dashboard's in-process tests (fixtures are in conftest.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx2

from app_kit import PASSWORD, Tenant, make_tenant
from app_kit import START as START
from app_kit import CountingWaker as CountingWaker
from cadenza.actions.base import Services
from cadenza.domain.model import Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Completion
from cadenza.testing import FrozenClock

SECRET = b"web-test-server-secret-0123456789ab"
HTMX = {"HX-Request": "true"}
Person = Tenant
"""Someone who signs in on the dashboard: a tenant's user, with an admin API key."""


async def make_person(services: Services, email: str) -> Person:
    return await make_tenant(services, email)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(client: httpx2.AsyncClient, person: Person) -> str:
    """Sign ``client`` in as ``person``; returns the CSRF token of its forms."""
    page = await client.get("/sign-in")
    answer = await client.post(
        "/sign-in",
        data={"csrf_token": csrf_of(page.text), "email": person.email, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of((await client.get("/")).text)


async def control(
    client: httpx2.AsyncClient, name: str, token: str, data: dict[str, Any]
) -> httpx2.Response:
    """Submit the dashboard control ``name`` as htmx does."""
    return await client.post(f"/controls/{name}", data={"csrf_token": token, **data}, headers=HTMX)


def field_errors(html: str) -> dict[str, str]:
    """Each field problem shown, by the id of the field it is beside."""
    return dict(re.findall(r'<p class="field-error" id="([^"]+)-err">([^<]*)</p>', html))


async def make_endpoint(
    client: httpx2.AsyncClient, person: Person, **overrides: Any
) -> tuple[str, str]:
    job = await client.post("/api/v1/jobs", json={"name": "shop"}, headers=person.headers)
    body = {
        "name": "health",
        "request": {"method": "GET", "url": "https://example.com/health"},
        "baseline": {"interval_seconds": 300},
        **overrides,
    }
    ep = await client.post(
        f"/api/v1/jobs/{job.json()['id']}/endpoints", json=body, headers=person.headers
    )
    assert ep.status_code == 201, ep.text
    return job.json()["id"], ep.json()["id"]


async def record_runs(services: Services, statuses: list[RunStatus]) -> None:
    """Let every due endpoint run once per status, through the store's claim path."""
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    for status in statuses:
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
                finished_at=now + timedelta(seconds=0.25),
                status=status,
                source=c.source,
                attempt=c.attempt,
                http_status=200 if status.ok else 503,
                error="" if status.ok else "unexpected HTTP status 503",
                worker_id="w1",
            )
            for c in claims
        ]
        await services.store.complete(
            "w1", [Completion(c, r) for c, r in zip(claims, runs, strict=True)], now
        )
        clock.advance(timedelta(seconds=1))
