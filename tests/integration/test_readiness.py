"""/readyz: ready on a current database with a fresh heartbeat; not ready (503) when
the database is gone, its schema is behind, or the scheduler's heartbeat is stale."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import psycopg
import pytest

from cadenza.actions.base import Services
from cadenza.adapters.probes import Readiness, expected_revision
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate, open_store
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher

pytestmark = pytest.mark.anyio
PG = "postgresql://postgres@127.0.0.1:5432"


class _Waker:
    def wake(self) -> None:
        return None


async def _open(url: str) -> SqlStore:
    return await open_store(url, FernetSecretBox(FernetSecretBox.generate_key()))


async def _readyz(store: SqlStore, readiness: Readiness) -> tuple[int, dict[str, object]]:
    clock = FrozenClock()
    services = Services(store, clock, _Waker(), FakeDispatcher(clock), secret_key=b"k" * 32)

    async def checks() -> dict[str, str]:
        return (await readiness.check()).checks

    app = create_app(services, Settings(), readiness=checks)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/healthz")).status_code == 200
        answer = await client.get("/readyz")
    return answer.status_code, answer.json()


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    name = f"cadenza_ready_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
async def test_readyz_fails_when_the_postgres_database_is_gone(pg_database: str) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_database}"
    migrate(url)
    store = await _open(url)
    try:
        readiness = Readiness(store, FrozenClock(), timeout=10)
        assert await _readyz(store, readiness) == (
            200,
            {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}},
        )
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{pg_database}" WITH (FORCE)')
        status, body = await _readyz(store, readiness)
        assert status == 503
        assert body["status"] == "not ready"
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert str(checks["database"]).startswith("unreachable")
    finally:
        await store.close()


async def test_readyz_fails_when_the_sqlite_file_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    store = await _open(f"sqlite+aiosqlite:///{path}")
    try:
        readiness = Readiness(store, FrozenClock())
        assert (await _readyz(store, readiness))[0] == 200
        path.write_bytes(b"not a database" * 1000)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        status, body = await _readyz(store, readiness)
        assert status == 503
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"] != "ok"
    finally:
        await store.close()


async def test_a_schema_behind_the_code_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0003")
    store = await _open(url)
    try:
        report = await Readiness(store, FrozenClock()).check()
        assert not report.ready
        assert report.checks["database"] == "ok"
        assert report.checks["migrations"] == f"at 0003, expected {expected_revision()}"
    finally:
        await store.close()


async def test_a_stale_scheduler_heartbeat_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'beat.db'}"
    migrate(url)
    store = await _open(url)
    clock = FrozenClock()
    beats: list[float | None] = [None]
    readiness = Readiness(store, clock, heartbeat=lambda: beats[-1], max_heartbeat_age=15)
    try:
        assert (await readiness.check()).checks["scheduler"] == "no heartbeat yet"
        beats.append(clock.monotonic())
        assert (await readiness.check()).ready
        clock.advance(16)
        report = await readiness.check()
        assert not report.ready
        assert report.checks["scheduler"] == "heartbeat 16 s old"
    finally:
        await store.close()
