"""SQLite checkpoints off the write path.

In WAL mode a commit appends pages to the WAL; a checkpoint copies them back into
the database file and syncs both. Left to SQLite, the checkpoint runs inside the
commit that crosses ``wal_autocheckpoint``, so a claim or a completion now and then
also paid for copying megabytes and two fsyncs: ~18 µs per row drained, ~10 of them
fsync (bench/claim.py). Here a PASSIVE checkpoint runs on a connection of its own
in a worker thread after every few writing transactions. It takes no lock that
writers or readers wait for, and the thread leaves the GIL while SQLite copies and
syncs, so the event loop keeps claiming and completing meanwhile.

The writers keep an automatic checkpoint as a safety net (``SAFETY_NET_PAGES``):
should this one fall behind, the WAL still cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import structlog

log = structlog.get_logger("cadenza.store")

EVERY_COMMITS = 8
"""Writing transactions between two checkpoints (a claim or a completion batch each)."""
SAFETY_NET_PAGES = 65_536
"""The writers' own ``wal_autocheckpoint`` (4 KiB pages: 256 MiB of WAL)."""
WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""The WAL file is cut back to this size after a checkpoint (it only ever grows)."""


class Checkpointer:
    """Starts a background checkpoint every ``EVERY_COMMITS`` commits, one at a time."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._commits = 0
        self._running: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the connection is used by one thread at a time

    def committed(self) -> None:
        """Count one writing transaction; start a checkpoint when enough are counted."""
        self._commits += 1
        if self._commits < EVERY_COMMITS or self._busy():
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
