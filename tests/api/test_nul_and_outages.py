"""Text with a NUL character is a 422 naming the field on every backend (PostgreSQL
cannot store one), and a database that fails while credentials are checked is a
503, never a 401 that would make a client throw away a good key."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from api_kit import PASSWORD, SECRET, START, CountingWaker, Tenant, make_tenant

from cadenza.actions.base import Services
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate, open_store
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.mcp.http import mount_mcp
from cadenza.ports import Store
from cadenza.testing import FrozenClock, MemoryAuthStore, MemoryStore
from cadenza.testing.dispatch import FakeDispatcher
from cadenza.testing.planner_store import MemoryPlannerStore

pytestmark = pytest.mark.anyio
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
NUL = "\x00"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this module; skipped without a server."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    name = f"cadenza_nul_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    box = FernetSecretBox(FernetSecretBox.generate_key())
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        path = tmp_path / "nul.db"
        shutil.copyfile(request.getfixturevalue("migrated_template"), path)
        return await open_store(f"sqlite+aiosqlite:///{path}", box)
    return await open_store(request.getfixturevalue("pg_url"), box)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[httpx2.AsyncClient, Tenant]]:
    """The REST API on each backend, with one tenant (a fresh one per test)."""
    store = await _store(request.param, request, tmp_path)
    clock = FrozenClock(START)
    services = Services(
        store=store,
        clock=clock,
        waker=CountingWaker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=SECRET,
        planner=MemoryPlannerStore(),
        auth_store=SqlAuthStore(store.engine) if isinstance(store, SqlStore) else MemoryAuthStore(),
    )
    app = create_app(services, Settings(rate_limit_per_minute=1_000_000))
    tenant = await make_tenant(services, f"{secrets.token_hex(4)}@example.com")
    transport = httpx2.ASGITransport(app=app)
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, tenant
    finally:
        if isinstance(store, SqlStore):
            await store.close()


def assert_names(response: httpx2.Response, field: str, why: str = "NUL") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert why in response.text


async def test_nul_in_bodies_is_refused_naming_the_field(
    backend: tuple[httpx2.AsyncClient, Tenant],
) -> None:
    client, tenant = backend
    h = tenant.headers
    job = await client.post("/api/v1/jobs", json={"name": "ok"}, headers=h)
    job_id = job.json()["id"]
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/v1/jobs", {"name": f"a{NUL}b"}, "name"),
        ("POST", "/api/v1/jobs", {"name": "x", "description": NUL}, "description"),
        ("POST", "/api/v1/jobs", {"name": "x", "tags": ["ok", f"t{NUL}"]}, "tags"),
        ("PATCH", f"/api/v1/jobs/{job_id}", {"reason": f"why{NUL}"}, "reason"),
        ("POST", "/api/v1/api-keys", {"name": NUL, "scopes": ["jobs:read"]}, "name"),
        (
            "POST",
            f"/api/v1/jobs/{job_id}/endpoints",
            {
                "name": "e",
                "request": {"url": "https://example.com/", "body": {"json": {"k": NUL}}},
                "baseline": {"interval_seconds": 60},
            },
            "request.body.json",
        ),
    ]
    for method, path, body, field in cases:
        assert_names(await client.request(method, path, json=body, headers=h), field)


async def test_nul_in_path_ids_cursors_and_filters_is_refused_naming_the_field(
    backend: tuple[httpx2.AsyncClient, Tenant],
) -> None:
    client, tenant = backend
    h = tenant.headers
    assert_names(await client.get("/api/v1/jobs/job_%00x", headers=h), "job_id")
    assert_names(await client.get("/api/v1/endpoints/ep_%00/schedule", headers=h), "endpoint_id")
    assert_names(await client.get("/api/v1/runs?job_id=%00", headers=h), "job_id")
    assert_names(await client.get("/api/v1/audit?target_id=a%00", headers=h), "target_id")
    assert_names(await client.get("/api/v1/runs?cursor=%00", headers=h), "cursor", "not a cursor")


async def test_nul_on_the_sign_in_route_is_refused_before_any_lookup(
    backend: tuple[httpx2.AsyncClient, Tenant],
) -> None:
    client, tenant = backend
    body = {"email": f"{tenant.email}{NUL}", "password": PASSWORD}
    assert_names(await client.post("/api/v1/session", json=body), "email")
    body = {"email": tenant.email, "password": f"x{NUL}"}
    assert_names(await client.post("/api/v1/session", json=body), "password")


async def test_nul_in_credentials_is_a_401_before_any_lookup(
    backend: tuple[httpx2.AsyncClient, Tenant],
) -> None:
    client, tenant = backend
    mark, prefix, rest = tenant.key.split("_", 2)
    forged = f"{mark}_{prefix[:-1]}{NUL}_{rest}"
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    client.cookies.set("cadenza_session", f"ses_{NUL}.x")
    assert (await client.get("/api/v1/me")).status_code == 401


@pytest.fixture
async def outage(tmp_path: Path, migrated_template: Path) -> Services:
    """Services over a SQLite database whose file has been taken away mid-flight."""
    path = tmp_path / "gone.db"
    shutil.copyfile(migrated_template, path)
    store = await open_store(
        f"sqlite+aiosqlite:///{path}", FernetSecretBox(FernetSecretBox.generate_key())
    )
    clock = FrozenClock(START)
    services = Services(
        store=store,
        clock=clock,
        waker=CountingWaker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=SECRET,
        auth_store=SqlAuthStore(store.engine),
    )
    await store.close()  # every pooled connection gone; a new one finds no tables
    path.unlink()
    path.mkdir()  # and no database file can be opened where it was
    return services


async def test_a_database_failure_while_checking_credentials_is_a_503(
    outage: Services,
) -> None:
    app = create_app(outage, Settings())
    mount_mcp(app, outage)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    key = {"Authorization": "Bearer cdz_abcdefgh_some-secret-part"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = [
            await client.get("/api/v1/me", headers=key),
            await client.post(
                "/api/v1/session", json={"email": "a@example.com", "password": PASSWORD}
            ),
            await client.post("/mcp", headers=key, json={"jsonrpc": "2.0", "method": "ping"}),
        ]
        client.cookies.set("cadenza_session", f"ses_{'0' * 26}.{'A' * 43}")
        responses.append(await client.get("/api/v1/me"))
    for response in responses:
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.headers["retry-after"]
        assert response.json()["code"] == "service_unavailable"
