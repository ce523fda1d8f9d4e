"""One contract suite, three stores: memory, SQLite (a temp file) and PostgreSQL.

PostgreSQL gets a fresh database per session (``cadenza_test_<random>``, dropped at
the end) and empty tables per test; it is skipped only when no server answers on
127.0.0.1:5432. SQLite migrates once per session and copies that file per test.
"""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.tables import metadata
from cadenza.ports import Store
from cadenza.testing import MemoryStore

PG_ADDRESS = ("127.0.0.1", 5432)
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    try:
        socket.create_connection(PG_ADDRESS, timeout=3).close()
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    # A server that answers but refuses us is a failure, not a skip.
    admin = _pg_admin()
    name = f"cadenza_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def secret_key() -> str:
    return FernetSecretBox.generate_key()


def _truncate(url: str) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {names}")


def _migrated_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        path = tmp_path / "cadenza.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    _truncate(url)
    return url


POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, secret_key: str
) -> AsyncIterator[Store]:
    """An empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
        return
    url = _migrated_url(request.param, request, tmp_path)
    sql_store = await open_store(url, FernetSecretBox(secret_key))
    try:
        yield sql_store
    finally:
        await sql_store.close()


@pytest.fixture(params=["sqlite", POSTGRES])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated SQL database of each kind."""
    return _migrated_url(request.param, request, tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _migrated_url("sqlite", request, tmp_path)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _migrated_url("postgres", request, tmp_path)


@pytest.fixture(params=["sqlite", POSTGRES])
def blank_sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated SQL database of each kind, for tests of one migration."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    request.getfixturevalue("pg_url")  # skips when no server answers
    name = f"cadenza_test_blank_{secrets.token_hex(4)}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
