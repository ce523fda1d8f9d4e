"""``SqlRetentionStore``: ``cadenza.ports.RetentionStore`` beside a ``SqlStore``.

Each prune is one short writing transaction of the store's own (on SQLite it takes
its turn with the scheduler's completions, never holding the write lock for long):
``DELETE … WHERE id IN (SELECT id … ORDER BY id LIMIT n)`` through the indexes the
run and audit lists already use, (tenant_id, id) and (endpoint_id, id). The cut-off
of "the newest N of an endpoint" is read first on the read path: a run recorded
meanwhile only moves the cut-off later, so deleting below the earlier one keeps more,
never less, than asked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cadenza.adapters.store.retention_tables import retention_policies
from cadenza.adapters.store.sql import SqlStore
from cadenza.adapters.store.tables import audit_events, endpoints, runs
from cadenza.domain.retention import RetentionPolicy
from cadenza.ids import floor_id

_P = retention_policies.c
_FIELDS = ("run_days", "runs_per_endpoint", "audit_days", "updated_at")


class SqlRetentionStore:
    """See the module docstring."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        dialect = store.engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def get_policy(self, tenant_id: str) -> RetentionPolicy | None:
        stmt = sa.select(retention_policies).where(_P.tenant_id == tenant_id)
        async with self._store.reading() as reads:
            row = (await reads.execute(stmt)).first()
        return None if row is None else _policy(row)

    async def put_policy(self, policy: RetentionPolicy) -> None:
        values = {"tenant_id": policy.tenant_id, **{f: getattr(policy, f) for f in _FIELDS}}
        stmt = self._insert(retention_policies).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_P.tenant_id], set_={f: stmt.excluded[f] for f in _FIELDS}
        )
        async with self._store.writing() as conn:
            await conn.execute(stmt)

    async def list_policies(self, *, after: str | None, limit: int) -> list[RetentionPolicy]:
        stmt = sa.select(retention_policies).order_by(_P.tenant_id).limit(limit)
        if after is not None:
            stmt = stmt.where(_P.tenant_id > after)
        async with self._store.reading() as reads:
            return [_policy(row) for row in (await reads.execute(stmt)).all()]

    async def prune_runs_before(self, tenant_id: str, before: datetime, *, limit: int) -> int:
        where = (runs.c.tenant_id == tenant_id, runs.c.id < floor_id("run", before))
        return await self._delete_oldest(runs, where, limit)

    async def endpoint_ids(self, tenant_id: str, *, after: str | None, limit: int) -> list[str]:
        e = endpoints.c
        stmt = sa.select(e.id).where(e.tenant_id == tenant_id).order_by(e.id).limit(limit)
        if after is not None:
            stmt = stmt.where(e.id > after)
        async with self._store.reading() as reads:
            return [str(row[0]) for row in (await reads.execute(stmt)).all()]

    async def prune_runs_beyond(self, endpoint_id: str, keep: int, *, limit: int) -> int:
        r = runs.c
        newest_kept = (
            sa.select(r.id)
            .where(r.endpoint_id == endpoint_id)
            .order_by(r.id.desc())
            .offset(keep - 1)
            .limit(1)
        )
        async with self._store.reading() as reads:
            cutoff = (await reads.execute(newest_kept)).scalar()
        if cutoff is None:
            return 0
        return await self._delete_oldest(runs, (r.endpoint_id == endpoint_id, r.id < cutoff), limit)

    async def prune_audit_before(self, tenant_id: str, before: datetime, *, limit: int) -> int:
        a = audit_events.c
        where = (a.tenant_id == tenant_id, a.id < floor_id("aud", before))
        return await self._delete_oldest(audit_events, where, limit)

    async def _delete_oldest(self, table: sa.Table, where: tuple[Any, ...], limit: int) -> int:
        oldest = sa.select(table.c.id).where(*where).order_by(table.c.id).limit(limit)
        stmt = table.delete().where(table.c.id.in_(oldest.scalar_subquery()))
        async with self._store.writing() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)


def _policy(row: Any) -> RetentionPolicy:
    return RetentionPolicy(
        tenant_id=row.tenant_id,
        run_days=row.run_days,
        runs_per_endpoint=row.runs_per_endpoint,
        audit_days=row.audit_days,
        updated_at=row.updated_at,
    )
