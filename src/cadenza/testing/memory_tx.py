"""The in-memory tables and the unit of work over them (``MemoryStore``'s ``Tx``).

Semantics follow the SQL store exactly (the contract suite runs against both):
tenant-scoped reads raise ``NotFound`` for other tenants' rows, duplicate ids and
unique keys raise ``Conflict``, lists page by keyset on the id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, TypeVar

from cadenza.domain import errors
from cadenza.domain.identity import ApiKey, User
from cadenza.domain.model import AuditEvent, Endpoint, Job, Run
from cadenza.ports import AuditFilter, JobStatus, Page, RunFilter, WorkerInfo

T = TypeVar("T", Job, Endpoint, Run, AuditEvent, ApiKey)

SlotKey = tuple[str, datetime, int]


@dataclass(slots=True)
class Tables:
    """Rows by id. Entities are immutable, so a shallow copy is a snapshot."""

    users: dict[str, User] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    """Lease epochs survive the lease itself, as the SQL column does."""
    claimed: dict[str, tuple[datetime | None, datetime | None]] = field(default_factory=dict)
    """Slot and time of each current claim, for the run the sweeper records as lost."""
    started: dict[str, datetime] = field(default_factory=dict)
    """When each current claim's request was about to leave (``mark_started``)."""
    flights: dict[tuple[str, int], Any] = field(default_factory=dict)
    """Runs of overlap=allow endpoints in flight (``testing.flights``)."""
    outcome_for: dict[str, datetime] = field(default_factory=dict)
    """The slot of each endpoint's newest outcome folded (``testing.flights``)."""
    runs: dict[str, Run] = field(default_factory=dict)
    run_slots: dict[SlotKey, str] = field(default_factory=dict)
    audit: dict[str, AuditEvent] = field(default_factory=dict)
    workers: dict[str, WorkerInfo] = field(default_factory=dict)

    def copy(self) -> Tables:
        return Tables(**{f.name: dict(getattr(self, f.name)) for f in fields(self)})

    def add_run(self, run: Run) -> None:
        self.runs[run.id] = run
        self.run_slots[(run.endpoint_id, run.scheduled_for, run.attempt)] = run.id

    def delete_runs(self, run_ids: Sequence[str]) -> int:
        for run_id in run_ids:
            run = self.runs.pop(run_id)
            self.run_slots.pop((run.endpoint_id, run.scheduled_for, run.attempt), None)
        return len(run_ids)


def page(rows: Iterable[T], cursor: str | None, limit: int, *, newest_first: bool) -> Page[T]:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if cursor is not None:
        rows = (r for r in rows if (r.id < cursor if newest_first else r.id > cursor))
    ordered = sorted(rows, key=lambda r: r.id, reverse=newest_first)
    items = ordered[:limit]
    return Page(items, items[-1].id if len(ordered) > limit else None)


def _owned(
    table: dict[str, Any], tenant_id: str, row_id: str, missing: type[errors.NotFound]
) -> Any:
    row = table.get(row_id)
    if row is None or row.tenant_id != tenant_id:
        raise missing(row_id)
    return row


def _insert(table: dict[str, Any], row: Any, unique: Callable[[Any], object] | None = None) -> None:
    name = type(row).__name__
    if row.id in table or (
        unique is not None and any(unique(other) == unique(row) for other in table.values())
    ):
        raise errors.Conflict(f"A {name} with the same id or unique key exists.")
    table[row.id] = row


def _paused_now(job: Job, now: datetime) -> bool:
    return job.pause is not None and job.pause.active(now)


class MemoryTx:
    """``ports.Tx`` over ``Tables``; the store holds its lock while this is in use."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def get_job(self, tenant_id: str, job_id: str, *, for_update: bool = False) -> Job:
        job: Job = _owned(self._t.jobs, tenant_id, job_id, errors.JobNotFound)
        return job

    async def insert_job(self, job: Job) -> None:
        _insert(self._t.jobs, job)

    async def update_job(self, job: Job) -> None:
        old: Job = _owned(self._t.jobs, job.tenant_id, job.id, errors.JobNotFound)
        self._t.jobs[job.id] = replace(job, created_at=old.created_at)

    async def list_jobs(
        self,
        tenant_id: str,
        *,
        status: JobStatus | None,
        now: datetime,
        cursor: str | None,
        limit: int,
    ) -> Page[Job]:
        def wanted(job: Job) -> bool:
            if job.tenant_id != tenant_id:
                return False
            if status is JobStatus.ARCHIVED:
                return job.archived
            if status is JobStatus.PAUSED:
                return not job.archived and _paused_now(job, now)
            if status is JobStatus.ACTIVE:
                return not job.archived and not _paused_now(job, now)
            return True

        return page(filter(wanted, self._t.jobs.values()), cursor, limit, newest_first=False)

    async def get_endpoint(
        self, tenant_id: str, endpoint_id: str, *, for_update: bool = False
    ) -> Endpoint:
        ep: Endpoint = _owned(self._t.endpoints, tenant_id, endpoint_id, errors.EndpointNotFound)
        return self._counted(ep)

    def _counted(self, ep: Endpoint) -> Endpoint:
        """``ep`` as read: with its runs in flight counted, as the SQL row's
        ``in_flight`` column counts them (the stored entity keeps 0)."""
        count = sum(1 for endpoint_id, _ in self._t.flights if endpoint_id == ep.id)
        return replace(ep, in_flight=count) if count else ep

    async def insert_endpoint(self, endpoint: Endpoint) -> None:
        await self.get_job(endpoint.tenant_id, endpoint.job_id)
        _insert(self._t.endpoints, endpoint)
        lease = endpoint.lease
        self._t.epochs[endpoint.id] = 0 if lease is None else lease.epoch
        if lease is not None:
            self._t.claimed[endpoint.id] = (endpoint.next_run_at, None)

    async def insert_endpoints(self, batch: Sequence[Endpoint]) -> None:
        for endpoint in batch:
            await self.insert_endpoint(endpoint)

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        """Write everything but the lease, which only the scheduler writes."""
        old: Endpoint = _owned(
            self._t.endpoints, endpoint.tenant_id, endpoint.id, errors.EndpointNotFound
        )
        self._t.endpoints[endpoint.id] = replace(
            endpoint, job_id=old.job_id, created_at=old.created_at, lease=old.lease, in_flight=0
        )

    async def list_endpoints(
        self,
        tenant_id: str,
        job_id: str,
        *,
        include_archived: bool,
        cursor: str | None,
        limit: int,
    ) -> Page[Endpoint]:
        rows = (
            e
            for e in self._t.endpoints.values()
            if e.tenant_id == tenant_id
            and e.job_id == job_id
            and (include_archived or not e.archived)
        )
        return page(map(self._counted, rows), cursor, limit, newest_first=False)

    async def get_run(self, tenant_id: str, run_id: str) -> Run:
        run: Run = _owned(self._t.runs, tenant_id, run_id, errors.RunNotFound)
        return run

    async def list_runs(
        self, tenant_id: str, flt: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[Run]:
        """Newest first."""

        def wanted(r: Run) -> bool:
            return (
                r.tenant_id == tenant_id
                and (flt.job_id is None or r.job_id == flt.job_id)
                and (flt.endpoint_id is None or r.endpoint_id == flt.endpoint_id)
                and (flt.status is None or r.status is flt.status)
                and (flt.since is None or r.started_at >= flt.since)
                and (flt.until is None or r.started_at < flt.until)
            )

        return page(filter(wanted, self._t.runs.values()), cursor, limit, newest_first=True)

    async def insert_audit(self, event: AuditEvent) -> None:
        # The SQL store keeps changes as JSON: round-trip so both return the same.
        changes = json.loads(json.dumps(event.changes))
        _insert(self._t.audit, replace(event, changes=changes))

    async def insert_audits(self, batch: Sequence[AuditEvent]) -> None:
        for event in batch:
            await self.insert_audit(event)

    async def list_audit(
        self, tenant_id: str, flt: AuditFilter, *, cursor: str | None, limit: int
    ) -> Page[AuditEvent]:
        """Newest first."""
        rows = (
            e
            for e in self._t.audit.values()
            if e.tenant_id == tenant_id
            and (flt.target_id is None or e.target_id == flt.target_id)
            and (flt.actor_id is None or e.actor.id == flt.actor_id)
            and (flt.since is None or e.at >= flt.since)
        )
        return page(rows, cursor, limit, newest_first=True)

    async def insert_user(self, user: User) -> None:
        _insert(self._t.users, user, unique=lambda u: u.email)

    async def get_user(self, user_id: str) -> User:
        user = self._t.users.get(user_id)
        if user is None:
            raise errors.UserNotFound(user_id)
        return user

    async def find_user_by_email(self, email: str) -> User | None:
        return next((u for u in self._t.users.values() if u.email == email), None)

    async def count_users(self) -> int:
        return len(self._t.users)

    async def insert_api_key(self, key: ApiKey) -> None:
        _insert(self._t.api_keys, key, unique=lambda k: k.prefix)

    async def find_api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        return next((k for k in self._t.api_keys.values() if k.prefix == prefix), None)

    async def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        key: ApiKey = _owned(self._t.api_keys, tenant_id, key_id, errors.ApiKeyNotFound)
        return key

    async def list_api_keys(
        self, tenant_id: str, *, cursor: str | None, limit: int
    ) -> Page[ApiKey]:
        rows = (k for k in self._t.api_keys.values() if k.tenant_id == tenant_id)
        return page(rows, cursor, limit, newest_first=False)

    async def update_api_key(self, key: ApiKey) -> None:
        old: ApiKey = _owned(self._t.api_keys, key.tenant_id, key.id, errors.ApiKeyNotFound)
        self._t.api_keys[key.id] = replace(key, created_at=old.created_at)
