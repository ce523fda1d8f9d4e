"""PostgreSQL: any number of workers and API servers on one database (psycopg 3).

Writers take a pool of their own; read-only units of work another, in autocommit:
at READ COMMITTED every statement takes its own snapshot inside a transaction too,
so BEGIN and COMMIT would be two round trips that buy nothing. Both pools ping only
connections that sat idle (``_ping_when_idle``). A transaction that wrote endpoints
sends ``NOTIFY cadenza_wakeup`` (``CHANNEL``) so other processes replan at once.

The claim's and the completion's statements run on psycopg's own connection inside
the transaction SQLAlchemy opened, a round trip each. Their batched writes copy the
rows (binary ``COPY``, encoded in C by psycopg) into a per-session temporary table
and apply them with one statement: a fraction of the client CPU of ``executemany``
or array parameters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store.dialect import (
    Connected,
    Dialect,
    Executor,
    Fetch,
    Sql,
    Staged,
    Steps,
    driver_connection,
)
from cadenza.adapters.store.scheduling import BATCHES
from cadenza.adapters.store.tables import UtcDateTime

T = TypeVar("T")
CHANNEL = "cadenza_wakeup"
"""The LISTEN/NOTIFY channel told whenever endpoints may be due sooner."""
WRITERS = 5
"""Pooled connections for writing units of work; as many again may open for a
burst and close when returned."""
READERS = 10
"""Pooled connections for read-only units of work, and ``READ_BURST`` more for a
burst. An API server at ten concurrent reads keeps ten busy: with fewer, every read
beyond the pool opened and closed a connection of its own (~0.2 ms of CPU each)."""
READ_BURST = 5
PING_AFTER_IDLE_S = 5.0
"""A pooled connection idle longer than this is pinged before it is lent."""


def _same(value: Any) -> Any:
    return value


def _fences(pairs: list[tuple[str, int]]) -> tuple[Any, ...]:
    return [i for i, _ in pairs], [e for _, e in pairs]


POSTGRES = Dialect("postgresql", _same, _same, list, _fences, insert, claim_returns_jobs=True)
_NOTIFY = sa.text(f"NOTIFY {CHANNEL}")
_ANALYZE = sa.text("ANALYZE endpoints")


class PostgresDatabase:
    """``dialect.Database`` for PostgreSQL; see the module docstring."""

    dialect = POSTGRES

    def __init__(self, target: sa.URL) -> None:
        options: dict[str, Any] = {"connect_args": {"options": "-c TimeZone=UTC"}}
        self.engine = create_async_engine(
            target, pool_size=WRITERS, max_overflow=WRITERS, **options
        )
        event.listen(self.engine.sync_engine, "connect", _create_staging)
        self._readers = create_async_engine(
            target,
            pool_size=READERS,
            max_overflow=READ_BURST,
            isolation_level="AUTOCOMMIT",
            **options,
        )
        for engine in (self.engine, self._readers):
            _ping_when_idle(engine, SystemClock().monotonic)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Executor]:
        async with self._readers.connect() as conn:
            yield Connected(conn, _fetch)

    def executor(self, conn: AsyncConnection) -> Executor:
        return Connected(conn, _fetch)

    async def run(self, steps: Steps[T], *, atomic: bool = True) -> T:
        if atomic:
            async with self.writing() as conn:
                return await _drive(conn, steps)
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await _drive(conn, steps)

    async def endpoints_written(self, conn: AsyncConnection, *, bulk: bool = False) -> None:
        """Wake the other processes; after a bulk write also refresh the planner's
        statistics: until autovacuum does, a stale estimate can make the claim sort
        every due row instead of walking the due index."""
        await conn.execute(_NOTIFY)
        if bulk:
            await conn.execute(_ANALYZE)

    async def close(self) -> None:
        await self._readers.dispose()
        await self.engine.dispose()


async def _drive(conn: AsyncConnection, steps: Steps[T]) -> T:
    """Run ``steps`` on ``conn``, a round trip per step."""
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if isinstance(step, Fetch):
            answer = await _fetch(conn, step.sql, step.params)
        else:
            answer = await _copy(conn, step.batch.postgres, step.rows)


async def _fetch(conn: AsyncConnection, sql: Sql, params: Sequence[Any]) -> list[Any]:
    driver = await driver_connection(conn)
    async with driver.cursor() as cur:
        await cur.execute(sql.postgres, params)
        return list(await cur.fetchall())


async def _copy(conn: AsyncConnection, staged: Staged, rows: Sequence[Sequence[Any]]) -> int:
    """Copy ``rows`` into ``staged``'s table and apply them; the rows changed."""
    driver = await driver_connection(conn)
    async with driver.cursor() as cur:
        columns = ", ".join(staged.columns)
        async with cur.copy(f"COPY {staged.table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(copy_types(staged))
            for row in rows:
                await copy.write_row(row)
        await cur.execute(staged.apply)
        return int(cur.rowcount)


@cache
def copy_types(staged: Staged) -> list[str]:
    """psycopg's type names for binary COPY of ``staged``'s columns."""
    return [_COPY_TYPE[_kind(column.type)] for column in staged.typed_as]


_COPY_TYPE = {
    UtcDateTime: "timestamptz",
    sa.BigInteger: "int8",
    sa.Integer: "int4",
    sa.Boolean: "bool",
    sa.LargeBinary: "bytea",
    sa.String: "text",  # varchar travels as text
}


def _kind(column_type: sa.types.TypeEngine[Any]) -> type[Any]:
    for kind in _COPY_TYPE:  # subclasses (BigInteger, Text) before their bases
        if isinstance(column_type, kind):
            return kind
    raise TypeError(f"no COPY type for {column_type!r}")


def staging_ddl() -> list[str]:
    """The temporary tables of the batched writes (``scheduling.BATCHES``)."""
    dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
    statements = []
    for batch in BATCHES:
        staged = batch.postgres
        columns = ", ".join(
            f"{name} {column.type.compile(dialect=dialect)}"
            for name, column in zip(staged.columns, staged.typed_as, strict=True)
        )
        statements.append(
            f"CREATE TEMP TABLE IF NOT EXISTS {staged.table} ({columns}) ON COMMIT DELETE ROWS"
        )
    return statements


def _create_staging(dbapi_conn: Any, _record: Any) -> None:
    # Created per session, outside any unit of work that could roll them back.
    cursor = dbapi_conn.cursor()
    for ddl in staging_ddl():
        cursor.execute(ddl)
    cursor.close()
    dbapi_conn.commit()


def _ping_when_idle(engine: AsyncEngine, monotonic: Callable[[], float]) -> None:
    """Check connections that sat in the pool, not every one lent.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip and ~0.1 ms
    of client CPU per unit of work. A connection lent again within seconds has just
    worked; one idle for longer may have been closed by the server, a proxy or a
    restart, and is replaced before anyone uses it (the pool retries the checkout
    when the ping fails).
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
