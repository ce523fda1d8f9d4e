"""``SqlStore``: ``cadenza.ports.Store`` over SQLite (aiosqlite) or PostgreSQL (psycopg 3).

SQLite runs in WAL mode with ``synchronous=NORMAL``; every writing transaction
starts with ``BEGIN IMMEDIATE`` so that two writers never deadlock upgrading a read
lock, and the claim is one ``UPDATE … RETURNING``. It serves one worker process.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` in one statement, so any number
of workers drain the same table without blocking each other; after a transaction
that wrote an endpoint it sends ``NOTIFY cadenza_wakeup`` (``CHANNEL``) so other
processes replan at once.

Claims and completions take the fast path in ``hot`` (raw driver SQL, batched
writes); everything else is SQLAlchemy Core (``tx``, ``statements``).

The schema is created by ``migrate`` (Alembic), never by ``open_store``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store import scheduling
from cadenza.adapters.store.checkpoints import SAFETY_NET_PAGES, WAL_LIMIT_BYTES, Checkpointer
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.hot import HotSql, pg_staging_ddl
from cadenza.adapters.store.inline import InlineReads
from cadenza.adapters.store.migrate import async_url, sync_url
from cadenza.adapters.store.statements import Statements
from cadenza.adapters.store.tables import endpoints, workers
from cadenza.adapters.store.tx import DriverExecutor, Executor, PooledReads, SqlTx
from cadenza.domain.model import Endpoint, Run
from cadenza.ports import Claim, Completion, SecretBox, Tx, WorkerInfo

CHANNEL = "cadenza_wakeup"
"""The PostgreSQL LISTEN/NOTIFY channel told whenever endpoints may be due sooner."""

_NOTIFY = sa.text(f"NOTIFY {CHANNEL}")
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
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""Writers queue on SQLite's single write lock; a batch commit takes milliseconds."""
SQLITE_CACHE_KIB = 32 * 1024
"""Page cache per connection (SQLite's default is 2 MiB), filled only as pages are read.

With 100k endpoints the claim, the completion's reads and the runs' indexes span far
more than 2 MiB; draining that backlog (bench/claim.py) spent ~25 µs of CPU per row
re-reading pages (interleaved runs: ~280 → ~255 µs/row, ~10% more rows/s)."""


class ReadPath(Protocol):
    """Where a store's read-only units of work run (``SqlStore._reads``)."""

    def unit(self) -> AbstractAsyncContextManager[Executor]: ...

    async def close(self) -> None: ...


class SqlStore:
    """The SQL store; build it with ``open_store``. See the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine,
        reads: ReadPath,
        secret_box: SecretBox,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._engine = engine
        self._read_path = reads
        self._checkpointer = checkpointer
        self.pg = engine.dialect.name == "postgresql"
        self._codec = Codec(secret_box)
        self._sql = Statements(pg=self.pg)
        self._hot = HotSql(pg=self.pg)
        self._in_flight = scheduling.InFlight()
        self._writer = asyncio.Lock()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one writing transaction, committed on success."""
        async with self._write_turn(), self._engine.connect() as conn, conn.begin():
            yield conn
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def _reads(self) -> AbstractAsyncContextManager[Executor]:
        """Where read-only statements run, each on its own snapshot (autocommit):
        inline on SQLite (``inline``), on a pool of their own on PostgreSQL."""
        return self._read_path.unit()

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """On SQLite, this store's writing transactions take turns in the event loop.

        They would queue on SQLite's write lock anyway, but a writer that finds it
        taken sleeps in SQLite's busy handler (1, 2, 5, 10 … ms) however soon the lock
        is free; here the next writer starts the moment the last one commits. That is
        what lets a claim and a completion overlap their Python work with each
        other's SQL. A wait as long as the busy timeout fails as SQLite's would.
        """
        if self.pg:
            yield
            return
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
            await self._writer.acquire()
        try:
            yield
        finally:
            self._writer.release()

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        On SQLite a writing transaction holds the database's write lock throughout.
        ``readonly=True`` promises no writes (SQLite refuses them): each statement
        then reads its own consistent snapshot, as at READ COMMITTED, and takes no lock.
        """
        if readonly:
            async with self._reads() as reads:
                yield SqlTx(reads, self._codec, pg=self.pg)
            return
        async with self._connect() as conn:
            tx = SqlTx(DriverExecutor(conn), self._codec, pg=self.pg)
            yield tx
            if tx.endpoints_changed:
                await self._notify(conn)

    async def _notify(self, conn: AsyncConnection) -> None:
        if self.pg:
            await conn.execute(_NOTIFY)

    # Scheduling -------------------------------------------------------------------

    async def claim_due(
        self,
        worker_id: str,
        now: datetime,
        *,
        lookahead: timedelta,
        limit: int,
        lease_margin: timedelta,
    ) -> list[Claim]:
        """Each lease lasts ``endpoint.request.lease_budget + lease_margin`` from ``now``."""
        if limit < 1:
            return []
        async with self._connect() as conn:
            rows, job_rows = await scheduling.claim_rows(
                conn, self._hot, worker_id, now, now + lookahead, limit, lease_margin
            )
        return scheduling.claims(self._hot, self._codec, self._in_flight, rows, job_rows)

    async def complete(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> list[str]:
        """Record and replan; returns the ids of endpoints whose lease was lost."""
        if not completions:
            return []
        prepared = scheduling.prepare(self._hot, self._in_flight, worker_id, completions, now)
        async with self._connect() as conn:
            return await scheduling.complete(
                conn, self._hot, self._codec, worker_id, completions, prepared, now
            )

    async def release(self, worker_id: str, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        params = [scheduling.fence(worker_id, c) for c in claims]
        for c in claims:
            self._in_flight.forget(c.endpoint.id, c.epoch)
        async with self._connect() as conn:
            await conn.execute(self._sql.release, params)
            await self._notify(conn)

    async def extend_leases(
        self, worker_id: str, claims: Sequence[Claim], until: datetime
    ) -> list[str]:
        """Heartbeat for long runs; returns the ids whose lease is no longer ours."""
        if not claims:
            return []
        async with self._connect() as conn:
            return await scheduling.extend(conn, self._sql, worker_id, claims, until)

    async def sweep_expired(self, now: datetime, *, limit: int = 1000) -> list[Run]:
        async with self._connect() as conn:
            lost = await scheduling.sweep(conn, self._sql, now, limit)
            if lost:
                await self._notify(conn)
        return lost

    async def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` among unleased endpoints, to size the sleep."""
        async with self._reads() as reads:
            value: datetime | None = (await reads.execute(self._sql.next_due)).scalar()
        return value

    async def import_endpoints(self, rows: Sequence[Endpoint]) -> None:
        """Bulk insert in one statement batch, for seeding, imports and benchmarks.

        Skips the per-row job check of ``Tx.insert_endpoint`` (the foreign key on the
        job still applies), so the caller vouches for the tenants. On PostgreSQL it
        refreshes the planner's statistics: until autovacuum does, a stale estimate
        can make the claim sort every due row instead of walking the due index.
        """
        if not rows:
            return
        values = [self._codec.endpoint_row(ep) for ep in rows]
        async with self._connect() as conn:
            await conn.execute(endpoints.insert(), values)
            await self._notify(conn)
        if self.pg:
            async with self._engine.connect() as conn:
                await conn.execute(sa.text("ANALYZE endpoints"))
                await conn.commit()

    # Workers ----------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        row = self._codec.worker_row(info)
        async with self._connect() as conn:
            await conn.execute(workers.delete().where(workers.c.id == info.id))
            await conn.execute(workers.insert(), row)

    async def heartbeat_worker(self, worker_id: str, now: datetime) -> None:
        stmt = workers.update().where(workers.c.id == worker_id).values(heartbeat_at=now)
        async with self._connect() as conn:
            await conn.execute(stmt)

    async def remove_worker(self, worker_id: str) -> None:
        async with self._connect() as conn:
            await conn.execute(workers.delete().where(workers.c.id == worker_id))

    async def list_workers(self) -> list[WorkerInfo]:
        stmt = sa.select(workers).order_by(workers.c.id)
        async with self._reads() as reads:
            rows = (await reads.execute(stmt)).all()
        return [self._codec.worker(r) for r in rows]

    async def close(self) -> None:
        await self._read_path.close()
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any) -> None:
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
        _sqlite_pragmas(dbapi_conn)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A deferred BEGIN that later writes can fail with SQLITE_BUSY without waiting
        # (lock upgrade); IMMEDIATE takes the write lock up front and honours the timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_reader(dbapi_conn: Any) -> None:
    _sqlite_pragmas(dbapi_conn)
    # A read-only unit of work must not write, here as inline (``inline``).
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


async def open_store(url: str, secret_box: SecretBox) -> SqlStore:
    """Connect to a migrated database (``sqlite+aiosqlite:///…`` or ``postgresql+psycopg://…``)."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        return _open_sqlite(target, secret_box)
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
    checkpointer = Checkpointer(Path(target.database or ""))
    return SqlStore(writer, inline, secret_box, checkpointer)
