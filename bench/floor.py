"""The database's share of a claim + complete drain: the store's own statements with
none of its Python around them.

``bench/claim.py`` measures ``SqlStore``. This drains a database seeded the same way
with the statements the store sends (``scheduling``'s steps), on the same schema and
pragmas, but with no decoding into endpoints and no replanning. On SQLite they run on
the store's hot writer thread with its checkpointer; on PostgreSQL from a plain
synchronous psycopg connection. Each claimed row
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
from cadenza.adapters.store.codec import ENDPOINT_COLUMNS, JOB_COLUMNS, RUN_COLUMNS, STATE_COLUMNS
from cadenza.adapters.store.dialect import Dialect, Fetch, Staged, Steps, Write, drive
from cadenza.adapters.store.postgres import POSTGRES, copy_types, staging_ddl
from cadenza.adapters.store.sqlite import SQLITE, Checkpointer, HotWriter
from cadenza.domain.model import PlanSource
from cadenza.ids import new_id

_ID, _JOB, _TENANT, _NEXT, _SOURCE, _ATTEMPT, _EPOCH, _REVISION = (
    ENDPOINT_COLUMNS.index(c)
    for c in (
        "id", "job_id", "tenant_id", "next_run_at", "next_run_source", "attempt", "lease_epoch",
        "revision",
    )
)  # fmt: skip
_JOB_ID, _JOB_REVISION = JOB_COLUMNS.index("id"), JOB_COLUMNS.index("revision")
WORKER = "floor"
CLOCK = SystemClock()
MARGIN = timedelta(seconds=5)
_INTERVAL = PlanSource.BASELINE_INTERVAL.value


class _Params:
    """Parameter rows for one drained row, in the store's column orders: templates
    filled by position, so that the floor spends next to nothing building them."""

    def __init__(self, d: Dialect, now: datetime) -> None:
        self._now = now
        finished = d.ts_out(now + timedelta(milliseconds=30))
        self._run = dict.fromkeys(RUN_COLUMNS)
        self._run.update(
            started_at=d.ts_out(now), finished_at=finished, status="success", missed_slots=0,
            http_status=200, error="", worker_id=WORKER, http_attempts=1,
        )  # fmt: skip
        self._state = dict.fromkeys(STATE_COLUMNS)
        self._state.update(
            next_run_at=d.ts_out(now + timedelta(hours=1)), last_run_at=finished,
            last_status="success", failure_count=0, success_streak=1, attempt=1,
        )  # fmt: skip

    def run(self, row: Sequence[Any]) -> list[Any]:
        self._run.update(
            id=new_id("run", self._now), endpoint_id=row[_ID], job_id=row[_JOB],
            tenant_id=row[_TENANT], scheduled_for=row[_NEXT],
            source=row[_SOURCE] or _INTERVAL, attempt=row[_ATTEMPT],
        )  # fmt: skip
        return list(self._run.values())

    def state(self, row: Sequence[Any]) -> list[Any]:
        """``STATE_COLUMNS`` (no hints, success, attempt reset), then the fence."""
        self._state.update(next_run_source=row[_SOURCE] or _INTERVAL, last_scheduled_for=row[_NEXT])
        return [*self._state.values(), row[_ID], WORKER, row[_EPOCH], row[_REVISION]]


def _complete(d: Dialect, params: _Params, rows: list[Any], jobs: list[Any]) -> Steps[Any]:
    """The store's completion of ``rows``, as if each were unchanged since its claim."""
    revisions = {job[_JOB_ID]: job[_JOB_REVISION] for job in jobs}
    runs = [params.run(r) for r in rows]
    states = [params.state(r) for r in rows]
    prepared = scheduling.Prepared(runs, states, None, revisions)
    return scheduling.complete_unchanged(d, prepared)  # checks every row


async def drain_sqlite(path: str, now: datetime, batch: int) -> tuple[int, float, float]:
    """Rows, seconds and CPU seconds to drain the SQLite database at ``path``: the
    store's own steps on its hot writer, with its checkpointer."""
    params = _Params(SQLITE, now)
    writer = HotWriter(Path(path))
    checkpointer = Checkpointer(Path(path))

    async def cycle() -> int:
        rows, jobs = await writer.run(scheduling.claim(SQLITE, WORKER, now, now, batch, MARGIN))
        checkpointer.committed()
        if not rows:
            return 0
        await writer.run(_complete(SQLITE, params, rows, jobs))
        checkpointer.committed()
        return len(rows)

    try:
        return await _timed(cycle)
    finally:
        await writer.close()
        await checkpointer.close()


async def drain_pg(dsn: str, now: datetime, batch: int) -> tuple[int, float, float]:
    """Rows, seconds and CPU seconds to drain the PostgreSQL database at ``dsn``: the
    store's own steps from a plain synchronous connection."""
    params = _Params(POSTGRES, now)
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        for ddl in staging_ddl():
            conn.execute(ddl)
        conn.commit()

        def run(step: Fetch | Write) -> Any:
            if isinstance(step, Fetch):
                return conn.execute(step.sql.postgres, step.params).fetchall()
            return _copy(conn, step.batch.postgres, step.rows)

        async def cycle() -> int:  # blocking: nothing else runs meanwhile
            conn.autocommit = True  # the claim's statements stand alone, as in the store
            claim = scheduling.claim(POSTGRES, WORKER, now, now, batch, MARGIN)
            rows, jobs = drive(claim, run)
            conn.autocommit = False
            if not rows:
                return 0
            with conn.transaction():
                drive(_complete(POSTGRES, params, rows, jobs), run)
            return len(rows)

        return await _timed(cycle)


def _copy(conn: psycopg.Connection[Any], staged: Staged, rows: Sequence[Sequence[Any]]) -> int:
    with conn.cursor() as cur:
        columns = ", ".join(staged.columns)
        with cur.copy(f"COPY {staged.table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(copy_types(staged))
            for row in rows:
                copy.write_row(row)
        cur.execute(staged.apply)
        return int(cur.rowcount)


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
