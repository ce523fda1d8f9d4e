"""Engines and pools of the SQL store, and ``open_store`` that builds it on them.

SQLite: a small pool of writers, reads inline on the caller's thread (``inline``)
with a small threaded pool for the statements too slow for that, and checkpoints in
the background (``checkpoints``). PostgreSQL: a pool of writers and a pool of
readers in autocommit, both pinging only connections that sat idle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store.checkpoints import SAFETY_NET_PAGES, WAL_LIMIT_BYTES, Checkpointer
from cadenza.adapters.store.hot import pg_staging_ddl
from cadenza.adapters.store.inline import InlineReads
from cadenza.adapters.store.migrate import async_url, sync_url
from cadenza.adapters.store.sql import SQLITE_BUSY_TIMEOUT_MS, SqlStore
from cadenza.adapters.store.sqlite_hot import SqliteHotWriter
from cadenza.adapters.store.tx import PooledReads
from cadenza.ports import SecretBox

PG_WRITERS = 5
"""Pooled PostgreSQL connections for writing units of work; as many again may open
for a burst and close when returned."""
PG_READERS = 10
"""Pooled PostgreSQL connections for read-only units of work, and 5 more for a burst.

An API server at ten concurrent reads keeps ten busy: with fewer, every read beyond
the pool opened and closed a connection of its own (~0.2 ms of CPU each)."""
PG_READ_BURST = 5
SQLITE_WRITERS = 2
"""Connections for writing units of work: the store's own writers take turns, the
planner store's share the rest (a third would only wait on SQLite's write lock)."""
SQLITE_THREADED_READERS = 2
"""Threads for the reads too slow to run inline (see ``inline``)."""
SQLITE_CACHE_KIB = 32 * 1024
"""Page cache per connection (SQLite's default is 2 MiB), filled only as pages are read.

With 100k endpoints the claim, the completion's reads and the runs' indexes span far
more than 2 MiB; draining that backlog (bench/claim.py) spent ~25 µs of CPU per row
re-reading pages (interleaved runs: ~280 → ~255 µs/row, ~10% more rows/s)."""


async def open_store(url: str, secret_box: SecretBox) -> SqlStore:
    """Connect to a migrated database (``sqlite+aiosqlite:///…`` or ``postgresql+psycopg://…``)."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        return _open_sqlite(target, secret_box)
    return _open_postgres(target, secret_box)


def sqlite_pragmas(dbapi_conn: Any) -> None:
    """Every SQLite connection's settings; the driver's own transaction handling off
    (``isolation_level = None``): writers issue their BEGIN themselves (``_sqlite_writer``)."""
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "foreign_keys=ON",
        f"cache_size=-{SQLITE_CACHE_KIB}",  # negative: KiB, not pages
        f"wal_autocheckpoint={SAFETY_NET_PAGES}",  # checkpoints: see ``checkpoints``
        f"journal_size_limit={WAL_LIMIT_BYTES}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_writer(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        sqlite_pragmas(dbapi_conn)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A deferred BEGIN that later writes can fail with SQLITE_BUSY without waiting
        # (lock upgrade); IMMEDIATE takes the write lock up front and honours the timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_reader(dbapi_conn: Any) -> None:
    sqlite_pragmas(dbapi_conn)
    # Readers run in autocommit: a write slipped into a read-only unit of work would
    # commit on its own, so SQLite refuses it instead.
    dbapi_conn.execute("PRAGMA query_only=ON")


def _pg_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The staging tables of the batched writes (``hot``) live as long as the
        # session; created here, outside any unit of work that could roll them back.
        cursor = dbapi_conn.cursor()
        for ddl in pg_staging_ddl():
            cursor.execute(ddl)
        cursor.close()
        dbapi_conn.commit()


def _open_postgres(target: sa.URL, secret_box: SecretBox) -> SqlStore:
    options: dict[str, Any] = {"connect_args": {"options": "-c TimeZone=UTC"}}
    writer = create_async_engine(target, pool_size=PG_WRITERS, max_overflow=PG_WRITERS, **options)
    _pg_setup(writer)
    reader = create_async_engine(
        target,
        pool_size=PG_READERS,
        max_overflow=PG_READ_BURST,
        isolation_level="AUTOCOMMIT",
        **options,
    )
    for engine in (writer, reader):
        _ping_when_idle(engine, SystemClock().monotonic)
    return SqlStore(writer, PooledReads(reader), secret_box)


PING_AFTER_IDLE_S = 5.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is lent."""


def _ping_when_idle(engine: AsyncEngine, monotonic: Callable[[], float]) -> None:
    """Check connections that sat in the pool, not every one lent.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip and ~0.1 ms
    of client CPU per unit of work, a fifth of a page of runs. A connection lent again
    within seconds has just worked; one idle for longer may have been closed by the
    server, a proxy or a restart, and is replaced before anyone uses it (the pool
    retries the checkout when the ping fails).
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or monotonic() - idle_since <= PING_AFTER_IDLE_S:
            return  # new, or lent again within seconds
        try:
            # The dialect's own ping, as pool_pre_ping runs it (it keeps autocommit).
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # whatever the driver raises, the connection is unusable
            raise sa.exc.DisconnectionError("pooled connection failed its ping") from exc


def _open_sqlite(target: sa.URL, secret_box: SecretBox) -> SqlStore:
    """A small pool of writers, who take turns anyway (``_write_turn``), and reads
    inline (``inline``), with a small threaded pool for the statements that cannot
    finish there.

    Every aiosqlite connection is a thread and every call on it a hop to that thread
    and back: with one pool of 16 connections, ten concurrent API reads kept ten
    threads contending with the event loop for the GIL, ~2.2 ms of CPU per page of
    runs (bench/api.py).
    """
    writer = create_async_engine(target, pool_size=SQLITE_WRITERS, max_overflow=0)
    _sqlite_writer(writer)
    threaded = create_async_engine(
        target, pool_size=SQLITE_THREADED_READERS, max_overflow=0, pool_reset_on_return=None
    )
    event.listen(threaded.sync_engine, "connect", lambda conn, _record: _sqlite_reader(conn))
    inline = InlineReads(sync_url(target), threaded, _sqlite_reader, SystemClock().monotonic)
    database = Path(target.database or "")
    hot_writer = SqliteHotWriter(database, sqlite_pragmas)
    return SqlStore(writer, inline, secret_box, Checkpointer(database), hot_writer)
