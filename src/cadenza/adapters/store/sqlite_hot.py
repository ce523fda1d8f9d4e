"""SQLite claims and completions, each a single hop to a thread of their own.

Through aiosqlite every statement is a hop: the call is queued to the connection's
thread, which runs it and wakes the event loop with the answer. A claim is four such
hops (BEGIN, the claim, its jobs, COMMIT) and a completion five, and each one waits
for a thread to wake, then for the event loop's next turn; in a busy worker, or while
the other batch is being decoded, that turn can be milliseconds away. Here the whole
transaction (``hot.Steps``) runs on a plain ``sqlite3`` connection in one call to a
dedicated thread, and the event loop can decode or replan one batch meanwhile.
Measured against the aiosqlite path, back to back on one host (median of 3): ~19%
more rows/s draining with a completion in flight (bench/claim.py, 30k due rows); a
worker with 10k endpoints (bench/lateness.py, two runs each) spent ~17% less CPU per
run, its p99 lateness fell from 19-63 ms to 8-9 ms and its RSS from 130 to 106 MB
(the writer pool's page caches no longer fill with the claimed rows).

The connection has the pragmas of every other (``configure``). Writers in this
process still take turns (``SqlStore._write_turn``); other processes wait on
SQLite's lock as usual (``BEGIN IMMEDIATE`` with the busy timeout).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from cadenza.adapters.store.hot import Steps, run_steps_blocking

T = TypeVar("T")


class Abandoned(Exception):
    """The caller was cancelled before the transaction committed; rolled back."""


class SqliteHotWriter:
    """Runs each ``Steps`` as one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction."""

    def __init__(self, database: Path, configure: Callable[[sqlite3.Connection], None]) -> None:
        self._database = database
        self._configure = configure
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cadenza-sqlite-hot")
        self._conn: sqlite3.Connection | None = None  # opened and used on that thread only
        self._closed = False

    async def run(self, steps: Steps[T]) -> T:
        """Commits what ``steps`` wrote, or rolls it all back if they raise.

        Cancelled while the thread works, it rolls back unless COMMIT has begun, as
        a unit of work on the other connections does: above all, a claim whose
        caller is gone must not leave leases no one will run (they would expire and
        be recorded as lost attempts).
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
            result = run_steps_blocking(conn, steps)
            if abandoned.is_set():
                raise Abandoned
            conn.execute("COMMIT")
        except BaseException:
            self._roll_back(conn)
            raise
        return result

    def _roll_back(self, conn: sqlite3.Connection) -> None:
        """Leave no transaction open, whatever failed (a COMMIT can fail too, on a
        deferred constraint or a full disk): the next one would find it still
        begun and fail in turn. A connection that cannot roll back is replaced."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._database)
            self._configure(conn)
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
