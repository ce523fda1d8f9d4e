"""SQLite reads on the caller's own thread.

aiosqlite runs every call on its connection's thread: the hop there and back costs
~120 µs of CPU (a queue, two thread wake-ups, the event loop's self-pipe), more than
the keyset page of runs it carries (~100 µs), and ten concurrent API reads kept
their threads contending with the event loop for the GIL (bench/api.py). So a
read-only unit of work on SQLite runs each statement synchronously, on one
connection shared by all of them, in autocommit. That is safe to share: a statement
runs to its last row before control returns to the event loop, so no two ever
interleave, and between statements the connection holds no snapshot or lock.

A statement may not hold the event loop for long all the same. WAL readers never
wait for the writer, but a filter that matches little of a big table can scan for a
while: a progress handler interrupts any statement after ``BUDGET_S`` and it runs
again on the threaded reader pool, as does one that finds the database busy (the
inline connection's busy timeout is zero: the event loop never sleeps in SQLite).
``setup`` makes the connection ``query_only``: a write in a read-only unit of work
fails instead of committing on its own.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from cadenza.adapters.store.hot import fetch

BUDGET_S = 0.002
"""How long one statement may run on the event loop before it moves to a thread."""
PROGRESS_STEPS = 1000
"""SQLite virtual-machine steps between two looks at the clock (a few µs apart)."""

T = TypeVar("T")
Setup = Callable[[Any], None]


class Deferred(Exception):
    """The statement could not finish inline; run it on the threaded pool."""


class InlineReads:
    """The read-only statements of SQLite units of work; see the module docstring.

    A ``tx.Executor`` (whose ``changed`` refuses) and the store's read path (``unit``).
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

    def _on_connect(self, dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        self._setup(dbapi_conn)
        dbapi_conn.execute("PRAGMA busy_timeout=0")
        dbapi_conn.set_progress_handler(self._over_budget, PROGRESS_STEPS)

    def _over_budget(self) -> int:
        return 1 if self._monotonic() > self._deadline else 0

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.Result[Any]:
        """``statement``'s rows, buffered."""
        try:
            return self._inline(lambda conn: conn.execute(statement, parameters).freeze()())
        except Deferred:
            async with self._threaded.connect() as conn:
                return await conn.execute(statement, parameters)

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of raw driver SQL, as tuples (``hot.fetch``)."""
        try:
            return self._inline(lambda conn: _driver_rows(conn, sql, params))
        except Deferred:
            async with self._threaded.connect() as conn:
                return await fetch(conn, sql, params)

    async def changed(self, statement: sa.Executable) -> int:
        raise RuntimeError("a read-only unit of work cannot write")

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[InlineReads]:
        """A read-only unit of work: the shared connection, nothing to take or return."""
        yield self

    def _inline(self, run: Callable[[sa.Connection], T]) -> T:
        with self._lock, self._engine.connect() as conn:
            self._deadline = self._monotonic() + BUDGET_S
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


def _driver_rows(conn: sa.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the pooled connection has no driver connection")
    return list(driver.execute(sql, params).fetchall())


def _deferrable(exc: BaseException | None) -> bool:
    """Interrupted by the budget, or the database was busy: worth a threaded retry."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    primary = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # extended codes keep it in the low byte
    return primary in (sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
