"""Helpers for the dashboard's in-process tests (fixtures are in conftest.py)."""

from __future__ import annotations

import functools
import re
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
SECRET = b"web-test-server-secret-0123456789ab"
PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}


class CountingWaker:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


@dataclass
class Person:
    """A user (a tenant), an admin API key of theirs, and a signed-in client."""

    email: str
    tenant_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@functools.cache
def _password_hash() -> str:
    # Argon2 is slow on purpose; the people made here share one hash.
    return PasswordHash((Argon2Hasher(),)).hash(PASSWORD)


async def make_person(services: Services, email: str) -> Person:
    now = services.clock.now()
    user = User(new_id("usr", now), email, _password_hash(), now)
    async with services.store.transaction() as tx:
        await tx.insert_user(user)
    _, key = await issue_api_key(
        services.store,
        services.clock,
        services.keyring,
        user.tenant_id,
        "admin",
        frozenset({Scope.ADMIN}),
        KeyKind.USER,
        None,
    )
    return Person(email, user.tenant_id, key)


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
