"""The database's share of a claim + complete drain: the store's own statements with
none of its Python around them.

``bench/claim.py`` measures ``SqlStore``. This drains a database seeded the same way
with the statements the store sends (``HotSql``), on the same schema and pragmas,
but with no decoding into endpoints and no replanning. On SQLite it runs the store's
own steps (``scheduling``) on its hot writer thread and checkpointer; on PostgreSQL
the same statements from a plain synchronous psycopg connection. Each claimed row
becomes a successful run and the same next slot one hour on (built straight from
the row's tuple). That is what the database engine and the driver cost on this host
for exactly the store's work; the store's rate divided by this one is the share of
that ceiling the store reaches, a figure that a slow or busy host changes far less
than the rates themselves.

Batches run one after the other (claim, then complete), as in the sequential drain.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store import scheduling
from cadenza.adapters.store.checkpoints import Checkpointer
from cadenza.adapters.store.codec import ENDPOINT_COLUMNS, JOB_COLUMNS
from cadenza.adapters.store.engines import sqlite_pragmas
from cadenza.adapters.store.hot import Batch, HotSql, pg_staging_ddl
from cadenza.adapters.store.sqlite_hot import SqliteHotWriter
from cadenza.domain.model import PlanSource
from cadenza.ids import new_id

_ID, _JOB, _TENANT = (ENDPOINT_COLUMNS.index(c) for c in ("id", "job_id", "tenant_id"))
_NEXT, _SOURCE, _ATTEMPT = (
    ENDPOINT_COLUMNS.index(c) for c in ("next_run_at", "next_run_source", "attempt")
)
_EPOCH, _REVISION = ENDPOINT_COLUMNS.index("lease_epoch"), ENDPOINT_COLUMNS.index("revision")
_JOB_ID, _JOB_REVISION = JOB_COLUMNS.index("id"), JOB_COLUMNS.index("revision")
WORKER = "floor"
CLOCK = SystemClock()
MARGIN = timedelta(seconds=5)
_INTERVAL = PlanSource.BASELINE_INTERVAL.value


class _Params:
    """Parameter tuples for one drained row, in the store's column orders."""

    def __init__(self, hot: HotSql, now: datetime) -> None:
        out = hot.ts_out
        self._now = now
        self._started, self._finished = out(now), out(now + timedelta(milliseconds=30))
        self._next = out(now + timedelta(hours=1))

    def run(self, row: Sequence[Any]) -> tuple[Any, ...]:
        source = row[_SOURCE] or _INTERVAL
        return (
            new_id("run", self._now), row[_ID], row[_JOB], row[_TENANT], row[_NEXT],
            self._started, self._finished, "success", source, row[_ATTEMPT], 0, 200, "",
            None, None, WORKER,
        )  # fmt: skip

    def state(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """``STATE_COLUMNS`` (no hints, success, attempt reset), then the fence."""
        source = row[_SOURCE] or _INTERVAL
        return (
            None, None, None, self._next, source, self._finished, row[_NEXT], "success",
            0, 1, 0, row[_ID], WORKER, row[_EPOCH], row[_REVISION],
        )  # fmt: skip


async def drain_sqlite(path: str, now: datetime, batch: int) -> tuple[int, float, float]:
    """Rows, seconds and CPU seconds to drain the SQLite database at ``path``: the
    store's own steps (``scheduling``) on its hot writer, with its checkpointer."""
    hot = HotSql(pg=False)
    params = _Params(hot, now)
    writer = SqliteHotWriter(Path(path), sqlite_pragmas)
    checkpointer = Checkpointer(Path(path))

    async def cycle() -> int:
        claim = scheduling.claim_rows(hot, WORKER, now, now, batch, MARGIN)
        rows, jobs = await writer.run(claim)
        checkpointer.committed()
        if not rows:
            return 0
        revisions = {job[_JOB_ID]: job[_JOB_REVISION] for job in jobs}
        states = [params.state(r) for r in rows]
        prepared = scheduling.Prepared([params.run(r) for r in rows], states, None, revisions)
        await writer.run(scheduling.complete_unchanged(hot, prepared))  # checks every row
        checkpointer.committed()
        return len(rows)

    try:
        return await _timed(cycle)
    finally:
        await writer.close()
        await checkpointer.close()


async def drain_pg(dsn: str, now: datetime, batch: int) -> tuple[int, float, float]:
    """Rows, seconds and CPU seconds to drain the PostgreSQL database at ``dsn``."""
    hot = HotSql(pg=True)
    params = _Params(hot, now)
    claim = hot.claim_params(WORKER, now, now, batch, MARGIN)
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        for ddl in pg_staging_ddl():
            conn.execute(ddl)
        conn.commit()

        async def cycle() -> int:  # blocking: nothing else runs meanwhile
            conn.autocommit = True  # the claim is one statement outside a transaction
            rows = conn.execute(hot.claim, claim).fetchall()
            conn.autocommit = False
            if not rows:
                return 0
            width = len(ENDPOINT_COLUMNS)
            jobs = {r[width + _JOB_ID]: r[width + _JOB_REVISION] for r in rows}
            with conn.transaction():
                conn.execute(hot.job_revisions, (list(jobs),)).fetchall()
                _copy(conn, hot.insert_runs, [params.run(r) for r in rows])
                _copy(conn, hot.complete_unchanged, [params.state(r) for r in rows])
            return len(rows)

        return await _timed(cycle)


def _copy(conn: psycopg.Connection[Any], batch: Batch, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur:
        with cur.copy(batch.copy) as copy:
            copy.set_types(list(batch.types))
            for row in rows:
                copy.write_row(row)
        cur.execute(batch.sql)
        # Every row written: the floor must do all of the store's work, never less.
        if cur.rowcount != len(rows):
            raise RuntimeError(f"{batch.sql[:40]}…: {cur.rowcount} of {len(rows)} rows written")


async def _timed(cycle: Callable[[], Awaitable[int]]) -> tuple[int, float, float]:
    rows = 0
    cpu, started = time.process_time(), CLOCK.monotonic()
    while done := await cycle():
        rows += done
    return rows, CLOCK.monotonic() - started, time.process_time() - cpu


def pg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlite_path(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.removeprefix("sqlite+aiosqlite:///")
