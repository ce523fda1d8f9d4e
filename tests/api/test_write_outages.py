"""A database that fails while an action runs is a 503 problem+json with Retry-After
on REST (a retryable tool error on MCP, a 503 page on the dashboard), never an
unhandled 500; reads that the database can still serve keep working.

The faults are real: on SQLite another connection holds the write lock (with the
busy timeout shortened so the test does not wait 30 s); on PostgreSQL every
connection goes through a proxy on 127.0.0.1 that is cut."""

from __future__ import annotations

import secrets
import shutil
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest
from api_kit import SECRET, START, CountingWaker, Tenant, make_tenant

from cadenza.actions import BY_NAME
from cadenza.actions.base import Context, Services
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate, open_store, sqlite
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.domain import errors
from cadenza.domain.identity import Scope
from cadenza.domain.model import Actor, ActorKind
from cadenza.mcp import calls
from cadenza.mcp.errors import tool_error
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher
from cadenza.testing.faults import CutProxy, cut_proxy

pytestmark = pytest.mark.anyio
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
JOBS = "/api/v1/jobs"


def _services(store: SqlStore) -> Services:
    clock = FrozenClock(START)
    return Services(
        store=store,
        clock=clock,
        waker=CountingWaker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=SECRET,
        auth_store=SqlAuthStore(store.engine),
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    name = f"cadenza_outage_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        yield name
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _client(services: Services) -> httpx2.AsyncClient:
    app = create_app(services, Settings(rate_limit_per_minute=1_000_000))
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver")


def assert_unavailable(response: httpx2.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["code"] == "service_unavailable"


async def _writes(client: httpx2.AsyncClient, tenant: Tenant, job_id: str) -> None:
    h = tenant.headers
    assert_unavailable(await client.post(JOBS, json={"name": "during"}, headers=h))
    body = {"description": "changed", "reason": "outage"}
    assert_unavailable(await client.patch(f"{JOBS}/{job_id}", json=body, headers=h))


async def _tool_error(services: Services, tenant: Tenant) -> None:
    actor = Actor(ActorKind.USER, tenant.tenant_id)
    ctx = Context.for_caller(services, tenant.tenant_id, actor, frozenset({Scope.ADMIN}))
    with pytest.raises(errors.ServiceUnavailable) as raised:
        await calls.run_tool(BY_NAME["create_job"], ctx, {"name": "via mcp"})
    assert tool_error(raised.value).retryable


@pytest.fixture
async def sqlite_services(
    tmp_path: Path, migrated_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Services, Path]]:
    # Writers give up on a held lock after 0.3 s instead of 30 s.
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "outage.db"
    shutil.copyfile(migrated_template, path)
    box = FernetSecretBox(FernetSecretBox.generate_key())
    store = await open_store(f"sqlite+aiosqlite:///{path}", box)
    assert isinstance(store, SqlStore)
    try:
        yield _services(store), path
    finally:
        await store.close()


async def test_sqlite_writes_under_a_held_lock_are_503_and_reads_still_work(
    sqlite_services: tuple[Services, Path],
) -> None:
    services, path = sqlite_services
    tenant = await make_tenant(services, "lock@example.com")
    async with await _client(services) as client:
        job = await client.post(JOBS, json={"name": "before"}, headers=tenant.headers)
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process's write lock
            await _writes(client, tenant, job_id)
            await _tool_error(services, tenant)
            listed = await client.get(JOBS, headers=tenant.headers)
            assert listed.status_code == 200, listed.text
            assert [j["id"] for j in listed.json()["items"]] == [job_id]
        finally:
            holder.rollback()
            holder.close()
        again = await client.post(JOBS, json={"name": "after"}, headers=tenant.headers)
        assert again.status_code == 201, again.text


@pytest.mark.postgres
async def test_postgres_writes_while_the_server_is_unreachable_are_503(
    pg_database: str,
) -> None:
    async with cut_proxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{pg_database}"
        box = FernetSecretBox(FernetSecretBox.generate_key())
        store = await open_store(url, box)
        assert isinstance(store, SqlStore)
        try:
            await _postgres_outage(_services(store), proxy)
        finally:
            await store.close()


async def _postgres_outage(services: Services, proxy: CutProxy) -> None:
    tenant = await make_tenant(services, "cut@example.com")
    async with await _client(services) as client:
        job = await client.post(JOBS, json={"name": "before"}, headers=tenant.headers)
        assert job.status_code == 201, job.text
        proxy.cut()
        await _writes(client, tenant, job.json()["id"])
        await _tool_error(services, tenant)
        proxy.restore()
        # Bounded: the pool replaces a dead connection on first use.
        statuses = []
        for _ in range(5):
            again = await client.post(JOBS, json={"name": "after"}, headers=tenant.headers)
            statuses.append(again.status_code)
            if again.status_code == 201:
                break
        assert statuses[-1] == 201, statuses
