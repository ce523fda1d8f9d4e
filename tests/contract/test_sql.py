"""What only the SQL stores promise: migrations, encryption at rest, wake-ups, plans."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from store_builders import T0, endpoint, job

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import CHANNEL, migrate, open_store, postgres
from cadenza.adapters.store.migrate import sync_url
from cadenza.adapters.store.tables import metadata
from cadenza.domain.model import Header, Method, Request

pytestmark = pytest.mark.anyio


def test_the_migrated_schema_matches_the_tables(sql_url: str) -> None:
    engine = sa.create_engine(sync_url(sql_url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_migrating_twice_is_harmless(sql_url: str) -> None:
    migrate(sql_url)
    migrate(sql_url)


async def test_secret_header_values_are_encrypted_at_rest(sql_url: str, secret_key: str) -> None:
    box = FernetSecretBox(secret_key)
    j = job()
    request = Request(
        Method.GET,
        "https://example.com/",
        headers=(Header("Authorization", "Bearer plain-token", secret=True),),
    )
    ep = endpoint(j, request=request)
    store = await open_store(sql_url, box)
    try:
        async with store.transaction() as tx:
            await tx.insert_job(j)
            await tx.insert_endpoint(ep)
        async with store.engine.connect() as conn:
            raw = (await conn.execute(sa.text("SELECT request FROM endpoints"))).scalar_one()
        async with store.transaction() as tx:
            assert (await tx.get_endpoint(j.tenant_id, ep.id)).request == request
    finally:
        await store.close()
    assert "plain-token" not in raw
    assert "Authorization" in raw


async def test_sqlite_claims_through_the_partial_index(sqlite_url: str, secret_key: str) -> None:
    store = await open_store(sqlite_url, FernetSecretBox(secret_key))
    try:
        async with store.engine.connect() as conn:
            plan = await conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM endpoints WHERE lease_owner IS NULL "
                "AND next_run_at IS NOT NULL AND next_run_at <= 1 ORDER BY next_run_at LIMIT 10"
            )
            details = " ".join(str(row[-1]) for row in plan)
    finally:
        await store.close()
    assert "ix_endpoints_due" in details


@pytest.mark.postgres
async def test_postgres_wakes_other_processes_after_endpoint_writes(
    postgres_url: str, secret_key: str
) -> None:
    store = await open_store(postgres_url, FernetSecretBox(secret_key))
    j = job()
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        try:
            async with store.transaction() as tx:
                await tx.insert_job(j)
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []
            async with store.transaction() as tx:
                await tx.insert_endpoint(endpoint(j, next_run_at=T0))
        finally:
            await store.close()
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notes] == [CHANNEL]


async def test_plain_sqlite_urls_get_the_async_driver(sqlite_url: str, secret_key: str) -> None:
    plain = sqlite_url.replace("sqlite+aiosqlite", "sqlite")
    migrate(plain)
    store = await open_store(plain, FernetSecretBox(secret_key))
    try:
        assert await store.next_due_at() is None
    finally:
        await store.close()


def _terminate_connections(url: str) -> int:
    database = sa.make_url(url).database
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        rows = c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        ).fetchall()
    return len(rows)


async def test_a_pooled_connection_the_server_closed_while_idle_is_replaced_unseen(
    postgres_url: str, secret_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "PING_AFTER_IDLE_S", -1.0)  # every returned connection is "idle"
    store = await open_store(postgres_url, FernetSecretBox(secret_key))
    try:
        assert await store.next_due_at() is None
        assert _terminate_connections(postgres_url) >= 1
        assert await store.next_due_at() is None
    finally:
        await store.close()


async def test_a_connection_lent_again_within_seconds_is_not_pinged(
    postgres_url: str, secret_key: str
) -> None:
    store = await open_store(postgres_url, FernetSecretBox(secret_key))
    try:
        assert await store.next_due_at() is None
        assert _terminate_connections(postgres_url) >= 1
        # Without a ping the dead connection is used, fails, and the pool drops it.
        with pytest.raises(sa.exc.OperationalError):
            await store.next_due_at()
        assert await store.next_due_at() is None
    finally:
        await store.close()
