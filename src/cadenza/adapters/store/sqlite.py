"""SQLite: one worker process's database, in WAL mode.

Timestamps are epoch microseconds (``tables.UtcDateTime``), lists of ids travel as
JSON text. Writers take turns in the event loop (``_write_turn``) and start with
``BEGIN IMMEDIATE``, so two never deadlock upgrading a read lock. Every aiosqlite
call is a hop to the connection's thread and back (~120 µs of CPU with the
wake-ups), so the hot work avoids aiosqlite:

* the claim, the start mark and the completion run whole on the hot writer's own
  thread, on a plain ``sqlite3`` connection (``HotWriter``): one hop per transaction
  instead of one per statement, and the event loop decodes or replans another batch
  meanwhile; it alone has a large page cache (``HOT_CACHE_KIB``);
* read-only units of work run inline on the caller's thread (``InlineReads``);
* checkpoints run in the background after every few commits (``Checkpointer``)
  instead of inside the commit that crosses ``wal_autocheckpoint``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store.dialect import (
    Connected,
    Dialect,
    Executor,
    Fetch,
    Sql,
    Steps,
    drive,
    driver_connection,
)
from cadenza.adapters.store.migrate import sync_url
from cadenza.adapters.store.tables import from_micros, to_micros

T = TypeVar("T")
Setup = Callable[[sqlite3.Connection], None]
log = structlog.get_logger("cadenza.store")

BUSY_TIMEOUT_MS = 30_000
"""Writers queue on SQLite's single write lock; a batch commit takes milliseconds."""
WRITERS = 2
"""Connections for writing units of work: the store's own writers take turns, the
planner store's share the rest (a third would only wait on SQLite's write lock)."""
THREADED_READERS = 2
"""Threads for the reads too slow to run inline (``InlineReads``)."""
READ_BUDGET_S = 0.002
"""How long one read may run on the event loop before it moves to a thread."""
PROGRESS_STEPS = 1000
"""SQLite virtual-machine steps between two looks at the clock (a few µs apart)."""
CACHE_KIB = 2 * 1024
"""Page cache per connection, SQLite's default. A cache fills as pages are read and
stays full, so a large one is memory that grows for as long as it takes to fill:
only the hot writer's work might gain from more."""
HOT_CACHE_KIB = 8 * 1024
"""The hot writer's page cache. bench/claim.py (100k endpoints) spent the same CPU
per row with 8, 16 and 32 MiB (within 3 %, interleaved runs). bench/soak.py's RSS
growth between its second and last quarter: +5.3 % with 32 MiB on every
connection, +6.0 % with 32 MiB here alone (still filling), +1.4 % with 8 MiB."""
CHECKPOINT_EVERY = 8
"""Writing transactions between two background checkpoints."""
SAFETY_NET_PAGES = 65_536
"""The writers' own ``wal_autocheckpoint`` (4 KiB pages: 256 MiB of WAL), should the
background checkpoints fall behind."""
WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""The WAL file is cut back to this size after a checkpoint (it only ever grows)."""


def _fences(pairs: list[tuple[str, int]]) -> tuple[Any, ...]:
    return (json.dumps(pairs),)


SQLITE = Dialect(
    "sqlite", from_micros, to_micros, json.dumps, _fences, insert, claim_returns_jobs=False
)


def pragmas(conn: sqlite3.Connection, cache_kib: int | None = None) -> None:
    """Every connection's settings (a page cache of ``cache_kib``, else ``CACHE_KIB``);
    the driver's own transaction handling off (``isolation_level = None``): writers
    issue their BEGIN themselves."""
    cache_kib = CACHE_KIB if cache_kib is None else cache_kib
    conn.isolation_level = None
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"busy_timeout={BUSY_TIMEOUT_MS}",
        "foreign_keys=ON",
        f"cache_size=-{cache_kib}",  # negative: KiB, not pages
        f"wal_autocheckpoint={SAFETY_NET_PAGES}",
        f"journal_size_limit={WAL_LIMIT_BYTES}",
    ):
        conn.execute(f"PRAGMA {pragma}")


def reader_pragmas(conn: sqlite3.Connection) -> None:
    """``pragmas``, and ``query_only``: readers run in autocommit, where a write slipped
    into a read-only unit of work would commit on its own; SQLite refuses it instead."""
    pragmas(conn)
    conn.execute("PRAGMA query_only=ON")


async def _fetch(conn: AsyncConnection, sql: Sql, params: Sequence[Any]) -> list[Any]:
    driver = await driver_connection(conn)
    return list(await driver.execute_fetchall(sql.sqlite, params))


class SqliteDatabase:
    """``dialect.Database`` for SQLite; see the module docstring."""

    dialect = SQLITE

    def __init__(self, target: sa.URL) -> None:
        self.engine = create_async_engine(target, pool_size=WRITERS, max_overflow=0)
        event.listen(self.engine.sync_engine, "connect", lambda conn, _record: pragmas(conn))
        # A deferred BEGIN that later writes can fail with SQLITE_BUSY without waiting
        # (lock upgrade); IMMEDIATE takes the write lock up front and honours the timeout.
        event.listen(
            self.engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE")
        )
        threaded = create_async_engine(
            target, pool_size=THREADED_READERS, max_overflow=0, pool_reset_on_return=None
        )
        event.listen(threaded.sync_engine, "connect", lambda conn, _r: reader_pragmas(conn))
        self._reads = InlineReads(
            sync_url(target), threaded, reader_pragmas, SystemClock().monotonic
        )
        database = Path(target.database or "")
        self._hot = HotWriter(database)
        self._checkpoints = Checkpointer(database)
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_turn(), self.engine.connect() as conn, conn.begin():
            yield conn
        self._checkpoints.committed()

    def reading(self) -> AbstractAsyncContextManager[Executor]:
        return self._reads.unit()

    def executor(self, conn: AsyncConnection) -> Executor:
        return Connected(conn, _fetch)

    async def run(self, steps: Steps[T], *, atomic: bool = True) -> T:
        """On the hot writer's thread, always as one transaction."""
        async with self._write_turn():
            result = await self._hot.run(steps)
        self._checkpoints.committed()
        return result

    async def endpoints_written(self, conn: AsyncConnection, *, bulk: bool = False) -> None:
        """Nothing to do: a SQLite database serves one worker process."""

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """This store's writing transactions take turns in the event loop.

        They would queue on SQLite's write lock anyway, but a writer that finds it
        taken sleeps in SQLite's busy handler (1, 2, 5, 10 … ms) however soon the lock
        is free; here the next writer starts the moment the last one commits. A wait
        as long as the busy timeout fails as SQLite's would.
        """
        async with asyncio.timeout(BUSY_TIMEOUT_MS / 1000):
            await self._turn.acquire()
        try:
            yield
        finally:
            self._turn.release()

    async def close(self) -> None:
        await self._reads.close()
        await self._hot.close()
        await self._checkpoints.close()
        await self.engine.dispose()


class Deferred(Exception):
    """The statement could not finish inline; run it on the threaded pool."""


class InlineReads:
    """The read-only statements of SQLite units of work, on the caller's own thread.

    A statement runs synchronously on one connection shared by every reader, in
    autocommit: a statement runs to its last row before control returns to the event
    loop, so no two ever interleave, and between statements the connection holds no
    snapshot or lock. Ten concurrent API reads through aiosqlite kept ten threads
    contending with the event loop for the GIL (bench/api.py). A statement may not
    hold the event loop for long all the same: a progress handler interrupts it after
    ``READ_BUDGET_S`` and it runs again on the threaded pool, as does one that finds
    the database busy (the inline connection's busy timeout is zero).
    """

    def __init__(
        self, url: sa.URL, threaded: AsyncEngine, setup: Setup, monotonic: Callable[[], float]
    ) -> None:
        self._threaded = threaded
        self._setup = setup
        self._monotonic = monotonic
        # Several threads may share the store (each with its own event loop): the
        # lock keeps their statements from interleaving on the one connection.
        self._lock = threading.Lock()
        self._deadline = math.inf
        self._engine = sa.create_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_reset_on_return=None,
            connect_args={"check_same_thread": False},
        )
        event.listen(self._engine, "connect", self._on_connect)

    def _on_connect(self, conn: sqlite3.Connection, _record: Any) -> None:
        self._setup(conn)
        conn.execute("PRAGMA busy_timeout=0")
        conn.set_progress_handler(self._over_budget, PROGRESS_STEPS)

    def _over_budget(self) -> int:
        return 1 if self._monotonic() > self._deadline else 0

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.Result[Any]:
        try:
            return self._inline(lambda conn: conn.execute(statement, parameters).freeze()())
        except Deferred:
            async with self._threaded.connect() as conn:
                return await conn.execute(statement, parameters)

    async def fetch(self, sql: Sql, params: Sequence[Any]) -> list[Any]:
        try:
            return self._inline(lambda conn: _driver_rows(conn, sql, params))
        except Deferred:
            async with self._threaded.connect() as conn:
                return await _fetch(conn, sql, params)

    async def changed(self, statement: sa.Executable) -> int:
        raise RuntimeError("a read-only unit of work cannot write")

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[InlineReads]:
        """A read-only unit of work: the shared connection, nothing to take or return."""
        yield self

    def _inline(self, run: Callable[[sa.Connection], T]) -> T:
        with self._lock, self._engine.connect() as conn:
            self._deadline = self._monotonic() + READ_BUDGET_S
            try:
                return run(conn)
            except (OperationalError, sqlite3.OperationalError) as exc:
                # SQLAlchemy wraps the driver's error; raw driver SQL raises it bare.
                if _deferrable(exc.orig if isinstance(exc, OperationalError) else exc):
                    raise Deferred from exc
                raise
            finally:
                self._deadline = math.inf

    async def close(self) -> None:
        self._engine.dispose()
        await self._threaded.dispose()


def _driver_rows(conn: sa.Connection, sql: Sql, params: Sequence[Any]) -> list[Any]:
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the pooled connection has no driver connection")
    return list(driver.execute(sql.sqlite, params).fetchall())


def _deferrable(exc: BaseException | None) -> bool:
    """Interrupted by the budget, or the database was busy: worth a threaded retry."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    primary = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes keep it in the low byte
    return primary in (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Abandoned(Exception):
    """The caller was cancelled before the transaction committed; rolled back."""


class HotWriter:
    """Runs each ``Steps`` as one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction on a
    plain ``sqlite3`` connection, on a thread of its own (see the module docstring)."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cadenza-sqlite-hot")
        self._conn: sqlite3.Connection | None = None  # opened and used on that thread only
        self._closed = False

    async def run(self, steps: Steps[T]) -> T:
        """Commits what ``steps`` wrote, or rolls it all back if they raise.

        Cancelled while the thread works, it rolls back unless COMMIT has begun, as a
        unit of work on the other connections does: above all, a claim whose caller
        is gone must not leave leases no one will run (they would expire and be
        recorded as lost attempts).
        """
        abandoned = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, self._transaction, steps, abandoned)
        except asyncio.CancelledError:
            abandoned.set()
            raise

    def _transaction(self, steps: Steps[T], abandoned: threading.Event) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:

            def run(step: Any) -> Any:
                if isinstance(step, Fetch):
                    return conn.execute(step.sql.sqlite, step.params).fetchall()
                return conn.executemany(step.batch.sqlite, step.rows).rowcount

            result = drive(steps, run)
            if abandoned.is_set():
                raise Abandoned
            conn.execute("COMMIT")
        except BaseException:
            self._roll_back(conn)
            raise
        return result

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        """Leave no transaction open, whatever failed (a COMMIT can fail too, on a
        deferred constraint or a full disk): the next one would find it still begun
        and fail in turn. A connection that cannot roll back is replaced."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._database)
            pragmas(conn, HOT_CACHE_KIB)
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        """Close the connection on its thread, then stop the thread (once)."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Checkpointer:
    """A PASSIVE checkpoint every ``CHECKPOINT_EVERY`` commits, one at a time, on a
    connection and a thread of its own.

    In WAL mode a commit appends pages to the WAL; a checkpoint copies them back and
    syncs both files. Left to SQLite it runs inside the commit that crosses
    ``wal_autocheckpoint``, so a claim or a completion now and then paid for copying
    megabytes and two fsyncs. This one takes no lock that writers or readers wait
    for, and its thread leaves the GIL while SQLite copies and syncs.
    """

    def __init__(self, database: Path) -> None:
        self._database = database
        self._commits = 0
        self._running: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the connection is used by one thread at a time

    def committed(self) -> None:
        """Count one writing transaction; start a checkpoint when enough are counted."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY or self._busy():
            return
        self._commits = 0
        self._running = asyncio.get_running_loop().create_task(self._checkpoint())

    def _busy(self) -> bool:
        return self._running is not None and not self._running.done()

    async def _checkpoint(self) -> None:
        try:
            await asyncio.to_thread(self._run)
        except (sqlite3.Error, OSError) as exc:  # the writers' safety net still holds
            log.warning("sqlite.checkpoint_failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        with self._lock:
            if self._conn is None:
                self._conn = sqlite3.connect(self._database, check_same_thread=False)
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        """Wait for a checkpoint under way (started in this event loop), then close."""
        running = self._running
        if running is not None and running.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(running, return_exceptions=True)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
