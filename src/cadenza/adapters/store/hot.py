"""The claim and the completion, on the driver connection.

These two run for every endpoint on every cycle, so they skip SQLAlchemy's per-row
work (parameter processing, result processing, ``Row`` objects): the SQL is
written out once per dialect and executed by the driver itself. Their statements
are ``Steps``, written once (``scheduling``) and run two ways: on PostgreSQL by
``run_steps``, on psycopg's connection inside the transaction SQLAlchemy opened; on
SQLite by ``run_steps_blocking``, on the plain ``sqlite3`` connection of the store's
hot writer thread (``sqlite_hot``). Rows come back as plain tuples in the column
order of ``codec.ENDPOINT_COLUMNS``; on SQLite, timestamps travel as epoch
microseconds both ways (``tables.UtcDateTime``'s representation).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.ext.asyncio import AsyncConnection

from cadenza.adapters.store import documents as doc
from cadenza.adapters.store.codec import ENDPOINT_COLUMNS, JOB_COLUMNS, Codec
from cadenza.adapters.store.documents import micros
from cadenza.adapters.store.statements import STATE_COLUMNS
from cadenza.adapters.store.tables import EPOCH, UtcDateTime, endpoints, runs, to_micros
from cadenza.domain.model import Endpoint, Run

RUN_COLUMNS = tuple(runs.c.keys())
# HotSql.run_params writes the columns by position; fail at import, not with shifted data.
if RUN_COLUMNS != (
    "id", "endpoint_id", "job_id", "tenant_id", "scheduled_for", "started_at", "finished_at",
    "status", "source", "attempt", "missed_slots", "http_status", "error", "response_body",
    "response_meta", "worker_id",
):  # fmt: skip
    raise RuntimeError("HotSql.run_params column order differs from tables.py")
# HotSql.state_params writes the columns by position, as RUN_COLUMNS above.
if STATE_COLUMNS != (
    "interval_hint", "one_shot", "pause", "next_run_at", "next_run_source", "last_run_at",
    "last_scheduled_for", "last_status", "failure_count", "success_streak", "attempt",
):  # fmt: skip
    raise RuntimeError("HotSql.state_params column order differs from statements.py")


def _same(value: Any) -> Any:
    return value


_MICROSECOND = timedelta(microseconds=1)


def _from_micros(value: int | None) -> datetime | None:
    # Multiplied rather than built from a keyword: several per row on every claim and
    # every page of runs (measured ~0.9 µs → ~0.55 µs each).
    return None if value is None else EPOCH + value * _MICROSECOND


def _to_micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


TimestampIn = Callable[[Any], datetime | None]
TimestampOut = Callable[[datetime | None], Any]


def timestamp_codec(*, pg: bool) -> tuple[TimestampIn, TimestampOut]:
    """How driver values and aware datetimes convert on raw driver SQL: PostgreSQL
    takes datetimes as they are; SQLite stores epoch microseconds (``UtcDateTime``)."""
    return (_same, _same) if pg else (_from_micros, _to_micros)


class HotSql:
    """The hot statements and value conversions of one dialect.

    SQLite runs batched writes as ``executemany`` of one prepared statement (cheap:
    no round trips). PostgreSQL copies each batch (binary ``COPY``, encoded in C by
    psycopg) into a per-connection temporary table and applies it with one
    statement: a fraction of the client CPU of ``executemany`` or array parameters.
    """

    def __init__(self, *, pg: bool) -> None:
        self.pg = pg
        self.ts_in, self.ts_out = timestamp_codec(pg=pg)
        self.claim = _pg_claim() if pg else _sqlite_claim()
        self.current = _current(pg)
        # The claimed rows' jobs: read by a second query on SQLite only, for the
        # PostgreSQL claim returns them itself.
        self.jobs = "" if pg else _sqlite_jobs()
        self.job_revisions = _job_revisions(pg)
        self.insert_runs = _pg_insert_runs() if pg else _sqlite_insert_runs()
        self.complete = _pg_complete() if pg else _sqlite_complete()
        self.complete_unchanged = _pg_complete_unchanged() if pg else _sqlite_complete_unchanged()

    def claim_params(
        self, worker_id: str, now: datetime, horizon: datetime, limit: int, margin: timedelta
    ) -> tuple[Any, ...]:
        out = self.ts_out
        return (worker_id, out(now), micros(margin), out(now), out(horizon), limit)

    def ids_param(self, ids: Sequence[str]) -> Any:
        return list(ids) if self.pg else json.dumps(list(ids))

    def run_params(self, run: Run) -> tuple[Any, ...]:
        """``Codec.run_row(run)`` as parameters in ``RUN_COLUMNS`` order.

        Built directly, not through the row dict: this runs for every run recorded
        and the dict round trip cost almost twice as much (measured ~5.1 µs → ~2.9 µs).
        """
        out = self.ts_out
        resp = run.response
        return (
            run.id,
            run.endpoint_id,
            run.job_id,
            run.tenant_id,
            out(run.scheduled_for),
            out(run.started_at),
            out(run.finished_at),
            run.status.value,
            run.source.value,
            run.attempt,
            run.missed_slots,
            run.http_status,
            run.error,
            None if resp is None else resp.body,
            Codec.response_meta(resp),
            run.worker_id,
        )

    def state_params(self, ep: Endpoint, fence: tuple[object, ...]) -> tuple[Any, ...]:
        """``documents.endpoint_state(ep)`` in ``STATE_COLUMNS`` order, then ``fence``.

        Built directly, not through the state dict, for the same reason as
        ``run_params`` (one per completion; measured ~5.2 µs → ~2.9 µs).
        """
        out = self.ts_out
        source = ep.next_run_source
        status = ep.last_status
        return (
            doc.hint_text(ep.interval_hint),
            doc.one_shot_text(ep.one_shot),
            doc.pause_text(ep.pause),
            out(ep.next_run_at),
            None if source is None else source.value,
            out(ep.last_run_at),
            out(ep.last_scheduled_for),
            None if status is None else status.value,
            ep.failure_count,
            ep.success_streak,
            ep.attempt,
            *fence,
        )


# Every SQL string below is assembled from constant column names, never from values:
# values always travel as parameters.

_UNREAD = frozenset({"lease_budget_us", "lease_slot", "lease_claimed_at"})
"""Columns ``Codec.endpoint`` skips: the claim returns NULL in their place, so that
neither side formats and parses two timestamps and an integer per row for nothing."""
_CLAIMED = ", ".join("NULL" if c in _UNREAD else c for c in ENDPOINT_COLUMNS)
_CLAIMED_AS = ", ".join(f"NULL AS {c}" if c in _UNREAD else c for c in ENDPOINT_COLUMNS)
"""``_CLAIMED`` with every column named, as a CTE needs (three NULL columns would clash)."""

_RELEASED = "lease_owner = NULL, lease_until = NULL, lease_slot = NULL, lease_claimed_at = NULL"
_DUE = (
    "SELECT id FROM endpoints WHERE lease_owner IS NULL AND next_run_at IS NOT NULL "
    "AND next_run_at <= {p} ORDER BY next_run_at LIMIT {p}"
)


def _sqlite_claim() -> str:
    return (
        "UPDATE endpoints SET lease_owner = ?, lease_until = ? + lease_budget_us + ?, "  # noqa: S608
        "lease_epoch = lease_epoch + 1, lease_slot = next_run_at, lease_claimed_at = ? "
        f"WHERE id IN ({_DUE.format(p='?')}) RETURNING {_CLAIMED}"
    )


def _pg_claim() -> str:
    """The claim and its rows' jobs in one statement (each row: ``ENDPOINT_COLUMNS``
    then ``JOB_COLUMNS``), run outside a transaction: a statement is atomic on its
    own, and BEGIN, a second query and COMMIT would be three more round trips, each
    waiting its turn in a busy worker's event loop."""
    # ANY(ARRAY(…)) runs the locking subquery once and then updates by primary key;
    # with IN (…) the planner may hash-join against a scan of the whole table.
    # Rows another worker is claiming right now are skipped, not waited for.
    jobs = ", ".join(f"j.{c}" for c in JOB_COLUMNS)
    return (
        "WITH claimed AS (UPDATE endpoints SET lease_owner = %s, "  # noqa: S608
        "lease_until = %s + (lease_budget_us + %s) * interval '1 microsecond', "
        "lease_epoch = lease_epoch + 1, lease_slot = next_run_at, lease_claimed_at = %s "
        f"WHERE id = ANY(ARRAY({_DUE.format(p='%s')} FOR UPDATE SKIP LOCKED)) "
        f"RETURNING {_CLAIMED_AS}) "
        f"SELECT c.*, {jobs} FROM claimed AS c JOIN jobs AS j ON j.id = c.job_id"
    )


def _current(pg: bool) -> str:
    columns = [f"e.{c}" for c in ENDPOINT_COLUMNS] + [f"j.{c}" for c in JOB_COLUMNS]
    ids = "= ANY(%s)" if pg else "IN (SELECT value FROM json_each(?))"
    lock = " FOR UPDATE OF e" if pg else ""
    return (
        f"SELECT {', '.join(columns)} FROM endpoints e JOIN jobs j ON j.id = e.job_id "  # noqa: S608
        f"WHERE e.id {ids}{lock}"
    )


def _sqlite_jobs() -> str:
    ids = "IN (SELECT value FROM json_each(?))"
    return f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id {ids}"  # noqa: S608


def _job_revisions(pg: bool) -> str:
    # FOR SHARE: a job cannot change until the completion that checked it commits
    # (on SQLite the transaction's write lock already guarantees that).
    ids = "= ANY(%s) FOR SHARE" if pg else "IN (SELECT value FROM json_each(?))"
    return f"SELECT id, revision FROM jobs WHERE id {ids}"  # noqa: S608


_CONFLICT = (
    # A zombie worker's real result replaces the 'lost' record the sweeper wrote;
    # any other conflict changes no row, which the caller detects by the row count.
    "ON CONFLICT (endpoint_id, scheduled_for, attempt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS)
    + " WHERE runs.status = 'lost'"
)


@dataclass(frozen=True, slots=True)
class Batch:
    """A batched write: ``sql`` per row on SQLite; on PostgreSQL the rows are copied
    into the temporary table ``stage`` (``columns`` of ``types``) and ``sql`` runs once."""

    sql: str
    stage: str = ""
    columns: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    @property
    def copy(self) -> str:
        return f"COPY {self.stage} ({', '.join(self.columns)}) FROM STDIN (FORMAT BINARY)"

    def ddl(self, table: sa.Table, names: Sequence[str]) -> str:
        dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
        cols = ", ".join(
            f"{alias} {table.c[name].type.compile(dialect=dialect)}"
            for alias, name in zip(self.columns, names, strict=True)
        )
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ({cols}) ON COMMIT DELETE ROWS"


def _sqlite_insert_runs() -> Batch:
    values = ", ".join("?" for _ in RUN_COLUMNS)
    cols = ", ".join(RUN_COLUMNS)
    return Batch(f"INSERT INTO runs ({cols}) VALUES ({values}) {_CONFLICT}")  # noqa: S608


def _pg_insert_runs() -> Batch:
    cols = ", ".join(RUN_COLUMNS)
    return Batch(
        f"INSERT INTO runs ({cols}) SELECT {cols} FROM cadenza_runs_in {_CONFLICT}",  # noqa: S608
        "cadenza_runs_in",
        RUN_COLUMNS,
        tuple(_copy_type(runs.c[c].type) for c in RUN_COLUMNS),
    )


def _sqlite_complete() -> Batch:
    return Batch(
        f"UPDATE endpoints SET {', '.join(f'{c} = ?' for c in STATE_COLUMNS)}, {_RELEASED} "  # noqa: S608
        "WHERE id = ? AND lease_owner = ? AND lease_epoch = ?"
    )


_FENCE_NAMES = ("id", "lease_owner", "lease_epoch")
_UNCHANGED_NAMES = (*_FENCE_NAMES, "revision")


def _sqlite_complete_unchanged() -> Batch:
    """``complete``, also fenced on the endpoint's revision at claim."""
    return Batch(f"{_sqlite_complete().sql} AND revision = ?")


def _pg_complete_unchanged() -> Batch:
    columns = (*STATE_COLUMNS, "b_id", "b_owner", "b_epoch", "b_revision")
    return Batch(
        f"UPDATE endpoints AS e SET {', '.join(f'{c} = v.{c}' for c in STATE_COLUMNS)}, "  # noqa: S608
        f"{_RELEASED} FROM cadenza_unchanged_in AS v "
        "WHERE e.id = v.b_id AND e.lease_owner = v.b_owner AND e.lease_epoch = v.b_epoch "
        "AND e.revision = v.b_revision",
        "cadenza_unchanged_in",
        columns,
        tuple(_copy_type(endpoints.c[c].type) for c in (*STATE_COLUMNS, *_UNCHANGED_NAMES)),
    )


def _pg_complete() -> Batch:
    columns = (*STATE_COLUMNS, "b_id", "b_owner", "b_epoch")
    types = tuple(_copy_type(endpoints.c[c].type) for c in (*STATE_COLUMNS, *_FENCE_NAMES))
    return Batch(
        f"UPDATE endpoints AS e SET {', '.join(f'{c} = v.{c}' for c in STATE_COLUMNS)}, "  # noqa: S608
        f"{_RELEASED} FROM cadenza_states_in AS v "
        "WHERE e.id = v.b_id AND e.lease_owner = v.b_owner AND e.lease_epoch = v.b_epoch",
        "cadenza_states_in",
        columns,
        types,
    )


def pg_staging_ddl() -> tuple[str, ...]:
    """The temporary tables the PostgreSQL batches copy into, created per connection."""
    hot = HotSql(pg=True)
    return (
        hot.insert_runs.ddl(runs, RUN_COLUMNS),
        hot.complete.ddl(endpoints, (*STATE_COLUMNS, *_FENCE_NAMES)),
        hot.complete_unchanged.ddl(endpoints, (*STATE_COLUMNS, *_UNCHANGED_NAMES)),
    )


def _copy_type(column_type: sa.types.TypeEngine[Any]) -> str:
    """The psycopg type name for binary COPY of a column (varchar travels as text)."""
    if isinstance(column_type, UtcDateTime):
        return "timestamptz"
    for kind, name in _COPY_TYPES:
        if isinstance(column_type, kind):
            return name
    raise TypeError(f"no COPY type for {column_type!r}")


_COPY_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Boolean, "bool"),
    (sa.LargeBinary, "bytea"),
    (sa.String, "text"),
)


@dataclass(frozen=True, slots=True)
class Fetch:
    """A step of a transaction: read the rows of ``sql``."""

    sql: str
    params: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Write:
    """A step of a transaction: apply ``batch`` to every parameter row."""

    batch: Batch
    rows: Sequence[Sequence[Any]]


T = TypeVar("T")
Steps = Generator[Fetch | Write, Any, T]
"""A claim's or a completion's statements, written once for both ways of running them:
each ``Fetch`` is answered with its rows (tuples), each ``Write`` with the number of
rows it changed; the generator's return value is the transaction's result, and an
exception it raises rolls the transaction back."""


@dataclass(frozen=True, slots=True)
class _Finished(Generic[T]):
    value: T


def _advance(steps: Steps[T], answer: Any) -> Fetch | Write | _Finished[T]:
    """The next step of ``steps`` given the last one's answer, or their result."""
    try:
        return steps.send(answer)
    except StopIteration as done:
        return _Finished(cast(T, done.value))


async def run_steps(conn: AsyncConnection, steps: Steps[T]) -> T:
    """Run ``steps`` on PostgreSQL inside ``conn``'s transaction, a round trip per step."""
    step = _advance(steps, None)
    while not isinstance(step, _Finished):
        if isinstance(step, Fetch):
            answer: Any = await fetch(conn, step.sql, step.params)
        else:
            answer = await copy_batch(conn, step.batch, step.rows)
        step = _advance(steps, answer)
    return step.value


def run_steps_blocking(conn: sqlite3.Connection, steps: Steps[T]) -> T:
    """Run ``steps`` on a plain SQLite connection, in the caller's transaction."""
    step = _advance(steps, None)
    while not isinstance(step, _Finished):
        if isinstance(step, Fetch):
            answer: Any = conn.execute(step.sql, step.params).fetchall()
        else:
            answer = conn.executemany(step.batch.sql, step.rows).rowcount
        step = _advance(steps, answer)
    return step.value


async def copy_batch(conn: AsyncConnection, batch: Batch, rows: Sequence[Sequence[Any]]) -> int:
    """On PostgreSQL: copies the rows into ``batch``'s staging table and applies them
    with its one statement; returns the rows changed."""
    driver = await _driver(conn)
    async with driver.cursor() as cur:
        async with cur.copy(batch.copy) as copy:
            copy.set_types(list(batch.types))
            for row in rows:
                await copy.write_row(row)
        await cur.execute(batch.sql)
        return int(cur.rowcount)


async def fetch(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` as tuples, run on the driver inside ``conn``'s transaction."""
    driver = await _driver(conn)
    if _is_psycopg(driver):
        async with driver.cursor() as cur:
            await cur.execute(sql, params)
            return list(await cur.fetchall())
    return list(await driver.execute_fetchall(sql, params))


async def _driver(conn: AsyncConnection) -> Any:
    """The aiosqlite or psycopg connection under ``conn`` (same transaction)."""
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("the pooled connection has no driver connection")
    return driver


def _is_psycopg(driver: Any) -> bool:
    return type(driver).__module__.startswith("psycopg")
