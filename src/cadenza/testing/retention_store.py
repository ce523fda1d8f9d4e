"""``MemoryRetentionStore``: the fake of ``ports.RetentionStore`` over a ``MemoryStore``'s
tables, with the SQL adapter's semantics (oldest first by id, at most ``limit``)."""

from __future__ import annotations

from datetime import datetime

from cadenza.domain.retention import RetentionPolicy
from cadenza.ids import floor_id
from cadenza.testing.store import MemoryStore


class MemoryRetentionStore:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._policies: dict[str, RetentionPolicy] = {}

    async def get_policy(self, tenant_id: str) -> RetentionPolicy | None:
        return self._policies.get(tenant_id)

    async def put_policy(self, policy: RetentionPolicy) -> None:
        self._policies[policy.tenant_id] = policy

    async def list_policies(self, *, after: str | None, limit: int) -> list[RetentionPolicy]:
        ids = sorted(t for t in self._policies if after is None or t > after)
        return [self._policies[t] for t in ids[:limit]]

    async def prune_runs_before(self, tenant_id: str, before: datetime, *, limit: int) -> int:
        floor = floor_id("run", before)
        async with self._store.locked_tables() as t:
            doomed = sorted(
                r.id for r in t.runs.values() if r.tenant_id == tenant_id and r.id < floor
            )
            return t.delete_runs(doomed[:limit])

    async def endpoint_ids(self, tenant_id: str, *, after: str | None, limit: int) -> list[str]:
        async with self._store.locked_tables() as t:
            ids = sorted(
                e.id
                for e in t.endpoints.values()
                if e.tenant_id == tenant_id and (after is None or e.id > after)
            )
            return ids[:limit]

    async def prune_runs_beyond(self, endpoint_id: str, keep: int, *, limit: int) -> int:
        async with self._store.locked_tables() as t:
            ids = sorted(r.id for r in t.runs.values() if r.endpoint_id == endpoint_id)
            doomed = ids[: max(0, len(ids) - keep)]
            return t.delete_runs(doomed[:limit])

    async def prune_audit_before(self, tenant_id: str, before: datetime, *, limit: int) -> int:
        floor = floor_id("aud", before)
        async with self._store.locked_tables() as t:
            doomed = sorted(
                a.id for a in t.audit.values() if a.tenant_id == tenant_id and a.id < floor
            )[:limit]
            for event_id in doomed:
                del t.audit[event_id]
            return len(doomed)
