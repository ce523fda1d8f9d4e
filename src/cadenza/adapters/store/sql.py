"""``SqlStore``: ``cadenza.ports.Store`` over one ``dialect.Database``.

Units of work are ``tx.SqlTx``: a writing one inside ``Database.writing``, a
read-only one on ``Database.reading``. The claim and the completion run as
``scheduling``'s steps; extending, releasing and sweeping leases are SQLAlchemy Core
(``FOR UPDATE`` renders as nothing on SQLite, whose writers hold the database's
write lock from their ``BEGIN IMMEDIATE``). The schema is created by ``migrate``
(Alembic), never here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cadenza.adapters.store import scheduling
from cadenza.adapters.store.codec import Codec, Row
from cadenza.adapters.store.dialect import Database, Dialect, Executor
from cadenza.adapters.store.flights import FlightStore
from cadenza.adapters.store.tables import UtcDateTime, endpoints, runs, workers
from cadenza.adapters.store.tx import SqlTx
from cadenza.domain import lifecycle
from cadenza.domain.model import Delivery, Endpoint, Overlap, PlanSource, Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Claim, Completed, Completion, SecretBox, Tx, WorkerInfo

_E = endpoints.c
Query = tuple[Any, dict[str, Any]]
"""A statement and its parameters."""
_FENCED = sa.and_(
    _E.id == sa.bindparam("b_id"),
    _E.lease_owner == sa.bindparam("b_owner"),
    _E.lease_epoch == sa.bindparam("b_epoch"),
)
_RELEASED: dict[str, Any] = {
    "lease_owner": None,
    "lease_until": None,
    "lease_slot": None,
    "lease_claimed_at": None,
    "lease_started_at": None,
}
_RELEASE = endpoints.update().where(_FENCED).values(**_RELEASED)
_EXTEND = endpoints.update().where(_FENCED).values(lease_until=sa.bindparam("until", UtcDateTime()))
_OWNED = sa.select(_E.id, _E.lease_epoch).where(
    _E.id.in_(sa.bindparam("ids", expanding=True)), _E.lease_owner == sa.bindparam("owner")
)
_LOST = endpoints.update().where(_FENCED).values(attempt=_E.attempt + 1, **_RELEASED)
_HOLDS_LEASE = _E.lease_until.is_not(None)
"""A leased row: a claim sets ``lease_until`` with ``lease_owner`` and a release clears
both. Sweeps and counts select leased rows by this, the predicate of the
``ix_endpoints_leased`` partial index (see ``tables``)."""
_LEASED = sa.select(endpoints).where(_HOLDS_LEASE)
_EXPIRED = (
    _LEASED.where(_E.lease_until < sa.bindparam("now", UtcDateTime()))
    .order_by(_E.lease_until)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
    .with_for_update(skip_locked=True)
)
# Locked, skipping rows another sweeper holds: two workers may free one dead
# worker's leases at once, and only one may settle each.
_HELD_BY = _LEASED.where(
    _E.lease_owner.in_(sa.bindparam("owners", expanding=True))
).with_for_update(skip_locked=True)
_HELD_BY_OTHERS = _LEASED.where(_E.lease_owner != sa.bindparam("keep")).with_for_update(
    skip_locked=True
)
# Each count runs on one of the partial indexes (ix_endpoints_leased, ix_endpoints_due).
# An overlap=allow endpoint with max_in_flight runs in flight is not claimable.
_CLAIMABLE = _E.in_flight < _E.max_in_flight
_LOAD = sa.select(
    sa.select(sa.func.count()).where(_HOLDS_LEASE).scalar_subquery()
    + sa.select(sa.func.count())
    .where(
        _E.lease_owner.is_(None),
        _E.next_run_at.is_not(None),
        _E.next_run_at <= sa.bindparam("horizon", UtcDateTime()),
        _CLAIMABLE,
    )
    .scalar_subquery()
)
_NEXT_DUE = sa.select(sa.func.min(_E.next_run_at)).where(
    _E.lease_owner.is_(None), _E.next_run_at.is_not(None), _CLAIMABLE
)


class SqlStore:
    """The SQL store; build it with ``open_store``."""

    def __init__(self, database: Database, secret_box: SecretBox) -> None:
        self._db = database
        self._codec = Codec(secret_box)
        self._in_flight = scheduling.InFlight()
        self._flights = FlightStore(database.dialect, self._codec)

    @property
    def engine(self) -> AsyncEngine:
        """The writers' engine (the planner store shares it)."""
        return self._db.engine

    @property
    def dialect(self) -> Dialect:
        return self._db.dialect

    def writing(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One writing transaction on this store's writers, committed on success (for
        the stores that share this one's connections)."""
        return self._db.writing()

    def reading(self) -> AbstractAsyncContextManager[Executor]:
        """A read-only unit of work on this store's read path."""
        return self._db.reading()

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        On SQLite a writing transaction holds the database's write lock throughout.
        ``readonly=True`` promises no writes (SQLite refuses them): each statement
        then reads its own consistent snapshot, as at READ COMMITTED, and takes no lock.
        """
        if readonly:
            async with self.reading() as reads:
                yield SqlTx(reads, self._codec, self._db.dialect)
            return
        async with self.writing() as conn:
            tx = SqlTx(self._db.executor(conn), self._codec, self._db.dialect)
            yield tx
            if tx.endpoints_changed:
                await self._db.endpoints_written(conn)

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
        d = self._db.dialect
        steps = scheduling.claim(d, worker_id, now, now + lookahead, limit, lease_margin)
        rows, jobs = await self._db.run(steps, atomic=False)
        return scheduling.claims(d, self._codec, self._in_flight, rows, jobs)

    async def complete(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> Completed:
        """Record the runs, replan and release every endpoint still ours."""
        if not completions:
            return Completed([])
        if any(c.claim.endpoint.overlap is Overlap.ALLOW for c in completions):
            return await self._complete_mixed(worker_id, completions, now)
        d = self._db.dialect
        prepared = scheduling.prepare(d, self._in_flight, worker_id, completions, now)
        if prepared.unchanged is not None:
            try:
                return await self._db.run(scheduling.complete_unchanged(d, prepared))
            except scheduling.Changed:
                pass  # rolled back: replan from the current rows instead
        return await self._db.run(
            scheduling.complete_from_current(d, self._codec, worker_id, completions, prepared, now)
        )

    async def _complete_mixed(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> Completed:
        """A batch holding runs of ``overlap=allow`` endpoints: those land their
        flights (``flights``), the others complete as usual."""
        landing = [c for c in completions if c.claim.endpoint.overlap is Overlap.ALLOW]
        rest = [c for c in completions if c.claim.endpoint.overlap is not Overlap.ALLOW]
        for c in landing:
            self._in_flight.forget(c.claim.endpoint.id, c.claim.epoch)
        async with self.writing() as conn:
            landed = await self._flights.complete(conn, worker_id, landing, now)
            await self._db.endpoints_written(conn)
        done = await self.complete(worker_id, rest, now)
        slots = [s for s in (landed.earliest_next_run, done.earliest_next_run) if s is not None]
        return Completed(landed.lost + done.lost, min(slots, default=None))

    async def launch(self, worker_id: str, claims: Sequence[Claim], now: datetime) -> list[str]:
        """``overlap=allow``: these claims' runs start now; their leases become flights
        and their endpoints move on to the next slot (``flights``). Returns the ids
        whose lease is no longer ours (their requests must not go)."""
        if not claims:
            return []
        async with self.writing() as conn:
            lost = await self._flights.launch(conn, worker_id, claims, now)
            await self._db.endpoints_written(conn)
        return lost

    async def release(self, worker_id: str, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        for c in claims:
            self._in_flight.forget(c.endpoint.id, c.epoch)
        async with self.writing() as conn:
            await conn.execute(_RELEASE, [_fence(worker_id, c) for c in claims])
            await self._db.endpoints_written(conn)

    async def extend_leases(
        self, worker_id: str, claims: Sequence[Claim], until: datetime
    ) -> list[str]:
        """Heartbeat for long runs; returns the ids whose lease is no longer ours."""
        if not claims:
            return []
        ids = [c.endpoint.id for c in claims]
        async with self.writing() as conn:
            owned = {
                row.id: row.lease_epoch
                for row in await conn.execute(_OWNED, {"ids": ids, "owner": worker_id})
            }
            ours = [c for c in claims if owned.get(c.endpoint.id) == c.epoch]
            if ours:
                await conn.execute(
                    _EXTEND, [{**_fence(worker_id, c), "until": until} for c in ours]
                )
            flying = [
                c
                for c in claims
                if c.endpoint.overlap is Overlap.ALLOW and owned.get(c.endpoint.id) != c.epoch
            ]
            kept = {c.endpoint.id for c in ours}
            if flying:
                kept |= await self._flights.extend(conn, worker_id, flying, until)
        return [i for i in ids if i not in kept]

    async def mark_started(
        self, worker_id: str, claims: Sequence[Claim], now: datetime
    ) -> list[str]:
        """Record, before their requests leave, that these claims' attempts start;
        returns the ids whose lease is no longer ours (their requests must not go).
        One statement, whatever the number of claims (the worker marks the runs
        starting together at once), outside a transaction on PostgreSQL like the
        claim: one round trip."""
        if not claims:
            return []
        steps = scheduling.mark_started(self._db.dialect, worker_id, claims, now)
        return await self._db.run(steps, atomic=False)

    async def sweep_expired(self, now: datetime, *, limit: int = 1000) -> list[Run]:
        """Record each expired lease's attempt (``lost``: never sent; ``unknown``:
        sent, outcome unknown) and free its slot, per the endpoint's delivery."""
        leases = (_EXPIRED, {"now": now, "limit": limit})
        return await self._sweep(leases, self._flights.expired(now, limit), now)

    async def free_leases_of(
        self, owners: Sequence[str] | None, now: datetime, *, keep: str = ""
    ) -> list[Run]:
        """``sweep_expired`` for every lease of the dead workers ``owners`` (``None``:
        of every worker but ``keep``), expired or not."""
        if owners is not None and not owners:
            return []
        leases: Query = (
            (_HELD_BY_OTHERS, {"keep": keep})
            if owners is None
            else (_HELD_BY, {"owners": list(owners)})
        )
        return await self._sweep(leases, self._flights.held_by(owners, keep), now)

    async def _sweep(self, leases: Query, flights: Query, now: datetime) -> list[Run]:
        """Free the leases and the flights (``flights``) the queries find, at once."""
        async with self.writing() as conn:
            recorded = await self._sweep_leases(conn, *leases, now)
            recorded += await self._flights.sweep(conn, *flights, now)
            if recorded:
                await self._db.endpoints_written(conn)
        return recorded

    async def _sweep_leases(
        self, conn: AsyncConnection, select: Any, params: dict[str, Any], now: datetime
    ) -> list[Run]:
        rows = (await conn.execute(select, params)).all()
        if not rows:
            return []
        recorded = [_swept_run(r, now) for r in rows]
        insert = self._db.dialect.insert(runs).on_conflict_do_nothing(
            index_elements=["endpoint_id", "scheduled_for", "attempt"]
        )
        await conn.execute(insert, [Codec.run_row(r) for r in recorded])
        done = [r for r in rows if _at_most_once_sent(r)]
        retried = [r for r in rows if not _at_most_once_sent(r)]
        if retried:
            await conn.execute(_LOST, [_row_fence(r) for r in retried])
        if done:
            await self._settle_unknown(conn, done, recorded, now)
        return recorded

    async def _settle_unknown(
        self, conn: AsyncConnection, rows: list[Row], recorded: list[Run], now: datetime
    ) -> None:
        """at_most_once: an attempt sent with its outcome unknown counts as the slot's
        run (neither success nor failure) and the endpoint moves on to its next slot."""
        tx = SqlTx(self._db.executor(conn), self._codec, self._db.dialect)
        by_endpoint = {r.endpoint_id: r for r in recorded}
        for row in rows:
            endpoint = self._codec.endpoint(row)
            job = await tx.get_job(endpoint.tenant_id, endpoint.job_id)
            await tx.update_endpoint(lifecycle.after_run(endpoint, job, by_endpoint[row.id], now))
        await conn.execute(_RELEASE, [_row_fence(r) for r in rows])

    async def due_load(self, horizon: datetime) -> int:
        """Endpoints leased now or due by ``horizon``: the work the live workers share."""
        async with self.reading() as reads:
            value: int = (await reads.execute(_LOAD, {"horizon": horizon})).scalar() or 0
        return value

    async def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` among unleased endpoints, to size the sleep."""
        async with self.reading() as reads:
            value: datetime | None = (await reads.execute(_NEXT_DUE)).scalar()
        return value

    async def import_endpoints(self, rows: Sequence[Endpoint]) -> None:
        """Bulk insert in one statement batch, for seeding, imports and benchmarks.

        Skips the per-row job check of ``Tx.insert_endpoint`` (the foreign key on the
        job still applies), so the caller vouches for the tenants.
        """
        if not rows:
            return
        values = [self._codec.endpoint_row(ep) for ep in rows]
        async with self.writing() as conn:
            await conn.execute(endpoints.insert(), values)
            await self._db.endpoints_written(conn, bulk=True)

    # Workers ----------------------------------------------------------------------

    async def register_worker(self, info: WorkerInfo) -> None:
        async with self.writing() as conn:
            await conn.execute(workers.delete().where(workers.c.id == info.id))
            await conn.execute(workers.insert(), self._codec.worker_row(info))

    async def heartbeat_worker(self, worker_id: str, now: datetime) -> None:
        stmt = workers.update().where(workers.c.id == worker_id).values(heartbeat_at=now)
        async with self.writing() as conn:
            await conn.execute(stmt)

    async def remove_worker(self, worker_id: str) -> None:
        async with self.writing() as conn:
            await conn.execute(workers.delete().where(workers.c.id == worker_id))

    async def list_workers(self) -> list[WorkerInfo]:
        stmt = sa.select(workers).order_by(workers.c.id)
        async with self.reading() as reads:
            rows = (await reads.execute(stmt)).all()
        return [self._codec.worker(r) for r in rows]

    async def leases_held(self, tenant_id: str | None = None) -> dict[str, int]:
        # Leased rows only (the ix_endpoints_leased partial index): a few per run in hand.
        stmt = (
            sa.select(_E.lease_owner, sa.func.count()).where(_HOLDS_LEASE).group_by(_E.lease_owner)
        )
        if tenant_id is not None:
            stmt = stmt.where(_E.tenant_id == tenant_id)
        async with self.reading() as reads:
            rows: list[Any] = list((await reads.execute(stmt)).all())
        return {str(owner): int(count) for owner, count in rows}

    async def count_due(self, now: datetime, *, cap: int) -> int:
        due = (
            sa.select(_E.id)
            .where(
                _E.lease_owner.is_(None),
                _E.next_run_at.is_not(None),
                _E.next_run_at <= now,
                _CLAIMABLE,
            )
            .limit(cap)
            .subquery()
        )
        async with self.reading() as reads:
            return int(
                (await reads.execute(sa.select(sa.func.count()).select_from(due))).scalar_one()
            )

    async def close(self) -> None:
        await self._db.close()


def _fence(worker_id: str, claim: Claim) -> dict[str, Any]:
    return {"b_id": claim.endpoint.id, "b_owner": worker_id, "b_epoch": claim.epoch}


def _row_fence(row: Row) -> dict[str, Any]:
    return {"b_id": row.id, "b_owner": row.lease_owner, "b_epoch": row.lease_epoch}


def _at_most_once_sent(row: Row) -> bool:
    return row.lease_started_at is not None and row.delivery == Delivery.AT_MOST_ONCE.value


def _swept_run(row: Row, now: datetime) -> Run:
    slot = row.lease_slot or row.next_run_at or now
    source = row.next_run_source
    sent = row.lease_started_at is not None
    return Run(
        id=new_id("run", now),
        endpoint_id=row.id,
        job_id=row.job_id,
        tenant_id=row.tenant_id,
        scheduled_for=slot,
        started_at=row.lease_started_at or row.lease_claimed_at or now,
        finished_at=now,
        status=RunStatus.UNKNOWN if sent else RunStatus.LOST,
        source=PlanSource.BASELINE_INTERVAL if source is None else PlanSource(source),
        attempt=row.attempt,
        error=lifecycle.swept_error(row.lease_owner, sent, Delivery(row.delivery)),
        worker_id=row.lease_owner,
    )
