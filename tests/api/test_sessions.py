"""Server-side sessions: signing out ends them, they expire, and rotating the server
secret keeps sessions and API keys working while the old secret is listed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx2
import pytest
import sqlalchemy as sa
from api_kit import PASSWORD, SECRET, Tenant
from fastapi import FastAPI

from cadenza.actions.base import Services
from cadenza.actions.sessions import SESSION_LIFETIME
from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.auth_tables import auth_sessions
from cadenza.api import create_app
from cadenza.api.auth import SESSION_COOKIE
from cadenza.config import Settings
from cadenza.domain.identity import Scope
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio
NEW_SECRET = b"the-secret-that-replaces-the-test-one"


async def sign_in(client: httpx2.AsyncClient, tenant: Tenant) -> str:
    response = await client.post(
        "/api/v1/session", json={"email": tenant.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.cookies[SESSION_COOKIE]


async def me_with(client: httpx2.AsyncClient, cookie: str) -> int:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    return (await client.get("/api/v1/me")).status_code


async def test_a_signed_out_cookie_is_refused_even_when_replayed(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    cookie = await sign_in(client, alice)
    assert await me_with(client, cookie) == 200
    assert (await client.delete("/api/v1/session")).status_code == 204
    assert await me_with(client, cookie) == 401


async def test_signing_out_one_session_leaves_the_others(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    laptop = await sign_in(client, alice)
    phone = await sign_in(client, alice)
    assert laptop != phone
    await me_with(client, laptop)
    assert (await client.delete("/api/v1/session")).status_code == 204
    assert await me_with(client, laptop) == 401
    assert await me_with(client, phone) == 200


async def test_a_session_expires_after_its_lifetime(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    cookie = await sign_in(client, alice)
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(SESSION_LIFETIME - timedelta(seconds=1))
    assert await me_with(client, cookie) == 200
    clock.advance(timedelta(seconds=1))
    assert await me_with(client, cookie) == 401


async def test_only_a_digest_of_the_cookie_is_stored(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    cookie = await sign_in(client, alice)
    session_id, _, token = cookie.partition(".")
    assert isinstance(services.store, SqlStore)
    async with services.store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(auth_sessions))).all()
    assert [row.id for row in rows] == [session_id]
    assert token not in rows[0].digest
    assert rows[0].digest.startswith(f"{services.keyring.key_id}:")


async def test_a_forged_or_malformed_cookie_is_refused(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    cookie = await sign_in(client, alice)
    session_id, _, token = cookie.partition(".")
    forged = f"{session_id}.{'A' * len(token)}"
    for value in (forged, f"{alice.tenant_id}.9999999999.{'0' * 64}", "ses_x.y", "\x00"):
        assert await me_with(client, value) == 401, value


def with_secret(services: Services, secret: bytes, previous: tuple[bytes, ...] = ()) -> Services:
    """The same database and clock served with another server secret."""
    return Services(
        store=services.store,
        clock=services.clock,
        waker=services.waker,
        dispatcher=services.dispatcher,
        secret_key=secret,
        previous_secret_keys=previous,
        auth_store=services.auth_store,
    )


@contextlib.asynccontextmanager
async def serving(services: Services) -> AsyncIterator[httpx2.AsyncClient]:
    app: FastAPI = create_app(services, Settings(rate_limit_per_minute=1_000_000))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_sessions_of_the_previous_secret_last_only_while_it_is_listed(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    cookie = await sign_in(client, alice)
    async with serving(with_secret(services, NEW_SECRET, (SECRET,))) as rotating:
        assert await me_with(rotating, cookie) == 200
    async with serving(with_secret(services, NEW_SECRET)) as rotated:
        assert await me_with(rotated, cookie) == 401


async def test_an_api_key_of_the_previous_secret_is_redigested_on_first_use(
    services: Services, alice: Tenant
) -> None:
    rotating = with_secret(services, NEW_SECRET, (SECRET,))
    async with serving(rotating) as client:
        assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200
    async with services.store.transaction(readonly=True) as tx:
        stored = await tx.find_api_key_by_prefix(alice.key.split("_")[1])
    assert stored is not None
    assert rotating.keyring.is_current(stored.digest)
    # Re-digested, the key no longer needs the previous secret.
    async with serving(with_secret(services, NEW_SECRET)) as client:
        assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200


async def test_an_unused_key_of_a_dropped_secret_is_refused(
    services: Services, alice: Tenant
) -> None:
    async with serving(with_secret(services, NEW_SECRET)) as client:
        assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 401


async def test_keys_issued_during_a_rotation_use_the_new_secret(
    services: Services, alice: Tenant
) -> None:
    rotating = with_secret(services, NEW_SECRET, (SECRET,))
    async with serving(rotating) as client:
        created = await client.post(
            "/api/v1/api-keys",
            json={"name": "fresh", "scopes": [Scope.JOBS_READ.value]},
            headers=alice.headers,
        )
    assert created.status_code == 201
    async with services.store.transaction(readonly=True) as tx:
        stored = await tx.find_api_key_by_prefix(created.json()["key"]["prefix"])
    assert stored is not None
    assert rotating.keyring.is_current(stored.digest)
