"""What differs between SQLite and PostgreSQL, behind two small objects.

The store (``sql``), its unit of work (``tx``) and the claim and the completion
(``scheduling``) are written once. What a database does its own way is
asked of it:

* ``Dialect``: how parameters and results of raw driver SQL are spelled (timestamps,
  lists of ids) and the dialect's ``INSERT … ON CONFLICT`` construct;
* ``Database``: how units of work run (a writing transaction, the read path, the
  claim's and the completion's ``Steps``) and what follows a write of endpoints.

``sqlite`` and ``postgres`` each provide both. The claim and the completion are the
two statements run for every endpoint on every cycle, so they skip SQLAlchemy's
per-row work: each is written as ``Steps``, a generator yielding the raw driver SQL
it runs (``Fetch``, ``Write``) with its logic in between, and each statement gives
its text for both databases (``Sql``, ``Batch``). Every such text is assembled from
constant column names, never from values: values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL and parameter conventions of one database."""

    name: str
    ts_in: Callable[[Any], Any]
    """A timestamp as raw driver SQL returns it, to an aware datetime (or ``None``)."""
    ts_out: Callable[[Any], Any]
    """An aware datetime (or ``None``) to a parameter of raw driver SQL."""
    ids: Callable[[list[str]], Any]
    """A list of ids as the one parameter of ``Sql`` texts that match ``id`` against it."""
    fences: Callable[[list[tuple[str, int]]], tuple[Any, ...]]
    """``(id, lease_epoch)`` pairs as the parameters of ``Sql`` texts that match them."""
    insert: Callable[[sa.Table], Any]
    """The dialect's ``insert``, which has ``on_conflict_do_nothing``/``_do_update``."""
    claim_returns_jobs: bool
    """The claim's one statement also returns each endpoint's job (``scheduling.CLAIM``)."""


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement of raw driver SQL, as each database spells it."""

    sqlite: str
    postgres: str


@dataclass(frozen=True, slots=True)
class Staged:
    """PostgreSQL's batched write: the rows are copied (binary ``COPY``) into the
    temporary table ``table``, whose ``columns`` have the types of ``typed_as``, then
    ``apply`` runs once."""

    table: str
    columns: tuple[str, ...]
    typed_as: tuple[sa.Column[Any], ...]
    apply: str


@dataclass(frozen=True, slots=True)
class Batch:
    """One statement applied to many parameter rows: on SQLite ``sqlite`` runs per row
    (``executemany`` of one prepared statement: no round trips); on PostgreSQL
    ``postgres`` stages them all (a fraction of the client CPU of ``executemany``)."""

    sqlite: str
    postgres: Staged


@dataclass(frozen=True, slots=True)
class Fetch:
    """A step: read the rows of ``sql`` (tuples, in the order its text names)."""

    sql: Sql
    params: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Write:
    """A step: apply ``batch`` to every parameter row."""

    batch: Batch
    rows: Sequence[Sequence[Any]]


Steps = Generator[Fetch | Write, Any, T]
"""Statements written once for both ways of running them: each ``Fetch`` is answered
with its rows, each ``Write`` with the number of rows it changed; the generator's
return value is the result, and an exception it raises rolls the transaction back."""


def drive(steps: Steps[T], run: Callable[[Fetch | Write], Any]) -> T:
    """Run ``steps`` to their result, answering each step with ``run(step)``."""
    answer = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        answer = run(step)


class Executor(Protocol):
    """Where a unit of work's statements run: a connection in a transaction, or the
    database's read path."""

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.Result[Any]:
        """SQLAlchemy Core ``statement``; its rows come back buffered."""
        ...

    async def fetch(self, sql: Sql, params: Sequence[Any]) -> list[Any]:
        """The rows of raw driver SQL, as tuples."""
        ...

    async def changed(self, statement: sa.Executable) -> int:
        """Runs a write; the number of rows it changed."""
        ...


class Connected:
    """``Executor`` over a connection in a writing transaction (``Database.writing``);
    raw driver SQL runs through the database's ``fetch``."""

    def __init__(
        self,
        conn: AsyncConnection,
        fetch: Callable[[AsyncConnection, Sql, Sequence[Any]], Awaitable[list[Any]]],
    ) -> None:
        self._conn = conn
        self._fetch = fetch

    async def execute(self, statement: sa.Executable, parameters: Any = None) -> sa.Result[Any]:
        return await self._conn.execute(statement, parameters)

    async def fetch(self, sql: Sql, params: Sequence[Any]) -> list[Any]:
        return await self._fetch(self._conn, sql, params)

    async def changed(self, statement: sa.Executable) -> int:
        return (await self._conn.execute(statement)).rowcount


async def driver_connection(conn: AsyncConnection) -> Any:
    """The aiosqlite or psycopg connection under ``conn`` (in the same transaction)."""
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("the pooled connection has no driver connection")
    return driver


class Database(Protocol):
    """One database's engine and ways of running units of work (``sqlite``, ``postgres``)."""

    dialect: Dialect
    engine: AsyncEngine
    """The writers' engine."""

    def writing(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a writing transaction, committed when the block ends."""
        ...

    def reading(self) -> AbstractAsyncContextManager[Executor]:
        """Read-only statements, each on its own consistent snapshot (autocommit)."""
        ...

    def executor(self, conn: AsyncConnection) -> Executor:
        """``conn`` (from ``writing``) as an ``Executor`` (``Connected``)."""
        ...

    async def run(self, steps: Steps[T], *, atomic: bool = True) -> T:
        """``steps`` as one transaction; ``atomic=False`` lets a database run each
        statement on its own instead (the claim's, each of which stands alone)."""
        ...

    async def endpoints_written(self, conn: AsyncConnection, *, bulk: bool = False) -> None:
        """Called before committing a transaction that wrote endpoints; ``bulk``: many."""
        ...

    async def close(self) -> None: ...
