"""``SqlStore``: ``cadenza.ports.Store`` over SQLite (aiosqlite) or PostgreSQL (psycopg 3).

SQLite runs in WAL mode with ``synchronous=NORMAL``; every writing transaction
starts with ``BEGIN IMMEDIATE`` so that two writers never deadlock upgrading a read
lock, and the claim is one ``UPDATE … RETURNING``. It serves one worker process.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` in one statement, so any number
of workers drain the same table without blocking each other; after a transaction
that wrote an endpoint it sends ``NOTIFY cadenza_wakeup`` (``CHANNEL``) so other
processes replan at once.

Claims and completions take the fast path in ``hot`` (raw driver SQL, batched
writes; on SQLite each transaction whole on a thread of its own, ``sqlite_hot``);
everything else is SQLAlchemy Core (``tx``, ``statements``). Read-only
units of work run in autocommit on a path of their own (``ReadPath``): inline on
SQLite, a pool of readers on PostgreSQL. ``engines`` builds the store on its pools.

The schema is created by ``migrate`` (Alembic), never by ``open_store``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cadenza.adapters.store import scheduling
from cadenza.adapters.store.checkpoints import Checkpointer
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.hot import HotSql, Steps, run_steps
from cadenza.adapters.store.sqlite_hot import SqliteHotWriter
from cadenza.adapters.store.statements import Statements
from cadenza.adapters.store.tables import endpoints, workers
from cadenza.adapters.store.tx import DriverExecutor, Executor, SqlTx
from cadenza.domain.model import Endpoint, Run
from cadenza.ports import Claim, Completed, Completion, SecretBox, Tx, WorkerInfo

T = TypeVar("T")
CHANNEL = "cadenza_wakeup"
"""The PostgreSQL LISTEN/NOTIFY channel told whenever endpoints may be due sooner."""

_NOTIFY = sa.text(f"NOTIFY {CHANNEL}")
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""Writers queue on SQLite's single write lock; a batch commit takes milliseconds."""


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
        hot_writer: SqliteHotWriter | None = None,
    ) -> None:
        self._engine = engine
        self._read_path = reads
        self._checkpointer = checkpointer
        self._hot_writer = hot_writer
        self.pg = engine.dialect.name == "postgresql"
        if self.pg == (hot_writer is not None):
            raise ValueError("SqlStore takes a SqliteHotWriter on SQLite, and none on PostgreSQL")
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
        self._committed()

    def _committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.committed()

    async def _run_hot(self, steps: Steps[T], *, claim: bool = False) -> T:
        """A claim's or a completion's statements as one transaction: on SQLite in one
        hop to the hot writer's thread (``sqlite_hot``), on PostgreSQL a round trip
        per statement; a claim there is one statement, run outside a transaction."""
        if self._hot_writer is None:
            async with self._claiming() if claim else self._connect() as conn:
                return await run_steps(conn, steps)
        async with self._write_turn():
            result = await self._hot_writer.run(steps)
        self._committed()
        return result

    @asynccontextmanager
    async def _claiming(self) -> AsyncIterator[AsyncConnection]:
        """A writer connection in autocommit (PostgreSQL's claim, see ``hot``)."""
        async with self._engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

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
        rows, job_rows = await self._run_hot(
            scheduling.claim_rows(self._hot, worker_id, now, now + lookahead, limit, lease_margin),
            claim=True,
        )
        return scheduling.claims(self._hot, self._codec, self._in_flight, rows, job_rows)

    async def complete(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> Completed:
        """Record the runs, replan and release every endpoint still ours."""
        if not completions:
            return Completed([])
        prepared = scheduling.prepare(self._hot, self._in_flight, worker_id, completions, now)
        if prepared.unchanged is not None:
            try:
                return await self._run_hot(scheduling.complete_unchanged(self._hot, prepared))
            except scheduling.Changed:
                pass  # rolled back: replan from the current rows instead
        return await self._run_hot(
            scheduling.complete_from_current(
                self._hot, self._codec, worker_id, completions, prepared, now
            )
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
        if self._hot_writer is not None:
            await self._hot_writer.close()
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._engine.dispose()
