"""Rows to entities and back.

Every entity is written as a dict keyed by column name (``*_row``) and read from a
row holding its table's columns in table order (``tables``): a SQLAlchemy ``Row``,
or a driver's tuple from the hot path, whose timestamps the dialect converts
(``ts``). The column lists the hot path's SQL names are the tables' own
(``ENDPOINT_COLUMNS`` …), so a row and its decoder cannot disagree on an order.
Enums are stored by value, nested configuration as JSON text (``documents``).
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from cadenza.adapters.store import documents as doc
from cadenza.adapters.store.tables import UtcDateTime, endpoints, jobs, runs
from cadenza.domain.identity import ApiKey, KeyKind, Scope, User
from cadenza.domain.model import (
    Actor,
    ActorKind,
    AuditEvent,
    CatchUp,
    Delivery,
    Endpoint,
    Job,
    Lease,
    Overlap,
    PlanSource,
    ResponseCapture,
    Run,
    RunStatus,
    endpoint_from,
)
from cadenza.ports import SecretBox, WorkerInfo

Row = Any
"""A result row: a SQLAlchemy ``Row`` or a driver's tuple."""
Timestamps = Callable[[Any], Any]
"""How a row's timestamps become aware datetimes (``dialect.Dialect.ts_in``)."""

ENDPOINT_COLUMNS: tuple[str, ...] = tuple(endpoints.c.keys())
JOB_COLUMNS: tuple[str, ...] = tuple(jobs.c.keys())
RUN_COLUMNS: tuple[str, ...] = tuple(runs.c.keys())
STATE_COLUMNS: tuple[str, ...] = tuple(c.name for c in endpoints.c if c.info.get("state"))
"""What runs and schedule-changing actions move (``endpoint_state``)."""


def _named(table: str, columns: tuple[str, ...]) -> Any:
    """A tuple type naming ``columns``: a row by column name, whatever its source
    (a SQLAlchemy ``Row`` or a driver's tuple)."""
    return namedtuple(f"{table}_row", columns)


_EndpointRow = _named("endpoints", ENDPOINT_COLUMNS)
_JobRow = _named("jobs", JOB_COLUMNS)
_RunRow = _named("runs", RUN_COLUMNS)


def _same(value: Any) -> Any:
    return value


class Params:
    """The parameters of raw driver SQL that names ``columns`` of ``table``: a row
    dict's values in that order, its timestamps as the dialect binds them."""

    def __init__(self, table: sa.Table, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self._times = tuple(
            i for i, c in enumerate(columns) if isinstance(table.c[c].type, UtcDateTime)
        )

    def __call__(self, row: dict[str, Any], ts_out: Callable[[Any], Any]) -> list[Any]:
        values = [row[c] for c in self.columns]
        for i in self._times:
            values[i] = ts_out(values[i])
        return values


RUN_PARAMS = Params(runs, RUN_COLUMNS)
STATE_PARAMS = Params(endpoints, STATE_COLUMNS)
_CATCH_UP = {c.value: c for c in CatchUp}
_DELIVERY = {d.value: d for d in Delivery}
_OVERLAP = {o.value: o for o in Overlap}
_SOURCES = {s.value: s for s in PlanSource}
_STATUSES = {s.value: s for s in RunStatus}


def endpoint_state(ep: Endpoint) -> dict[str, Any]:
    """The ``STATE_COLUMNS`` of ``ep``."""
    return {
        "interval_hint": doc.hint_text(ep.interval_hint),
        "one_shots": doc.one_shots_text(ep.one_shots),
        "pause": doc.pause_text(ep.pause),
        "next_run_at": ep.next_run_at,
        "next_run_source": None if ep.next_run_source is None else ep.next_run_source.value,
        "last_run_at": ep.last_run_at,
        "last_scheduled_for": ep.last_scheduled_for,
        "last_status": None if ep.last_status is None else ep.last_status.value,
        "failure_count": ep.failure_count,
        "success_streak": ep.success_streak,
        "attempt": ep.attempt,
        "retry_after_until": ep.retry_after_until,
    }


def response_meta(resp: ResponseCapture | None) -> str | None:
    if resp is None:
        return None
    return doc.dumps(
        [resp.content_type, resp.size, resp.truncated, [list(h) for h in resp.headers]]
    )


def _response(body: bytes | None, meta: str | None) -> ResponseCapture | None:
    if meta is None:
        return None
    content_type, size, truncated, headers = json.loads(meta)
    return ResponseCapture(
        bytes(body or b""), content_type, size, truncated, tuple((n, v) for n, v in headers)
    )


class Codec:
    """Maps every entity to its table's row; holds the secret box and decode caches."""

    def __init__(self, secret_box: SecretBox) -> None:
        self.config = doc.ConfigCodec(secret_box)

    # Endpoints ------------------------------------------------------------------

    def endpoint_row(self, ep: Endpoint) -> dict[str, Any]:
        lease = ep.lease
        return {
            "id": ep.id,
            "job_id": ep.job_id,
            "tenant_id": ep.tenant_id,
            **self.endpoint_config(ep),
            **endpoint_state(ep),
            "lease_owner": None if lease is None else lease.owner,
            "lease_until": None if lease is None else lease.until,
            "lease_epoch": 0 if lease is None else lease.epoch,
            "lease_slot": None if lease is None else ep.next_run_at,
            "lease_claimed_at": None,
            "revision": 0,
            "lease_started_at": None,
            "in_flight": 0,
            "outcome_for": None,
        }

    def endpoint_config(self, ep: Endpoint) -> dict[str, Any]:
        """Every column but the id, the owners, the runtime state and the lease."""
        return {
            "name": ep.name,
            "description": ep.description,
            "tier": ep.tier,
            "request": self.config.request_text(ep.request),
            "baseline": doc.baseline_text(ep.baseline),
            "guardrails": doc.guardrails_text(ep.guardrails),
            "catch_up": ep.catch_up.value,
            "delivery": ep.delivery.value,
            "overlap": ep.overlap.value,
            "max_in_flight": ep.max_in_flight,
            "jitter_us": doc.micros(ep.jitter),
            "planner_enabled": ep.planner_enabled,
            "archived_at": ep.archived_at,
            "created_at": ep.created_at,
            "updated_at": ep.updated_at,
            "lease_budget_us": doc.micros(ep.request.lease_budget),
        }

    def endpoint(self, values: Sequence[Any], ts: Timestamps = _same) -> Endpoint:
        """From a row whose first columns are the endpoints table's, in order."""
        r = _EndpointRow._make(values[: len(ENDPOINT_COLUMNS)])
        config = self.config
        lease = (
            None
            if r.lease_owner is None
            else Lease(r.lease_owner, ts(r.lease_until), r.lease_epoch)
        )
        return endpoint_from(
            {
                "id": r.id,
                "job_id": r.job_id,
                "tenant_id": r.tenant_id,
                "name": r.name,
                "request": config.request(r.request),
                "baseline": config.baseline(r.baseline),
                "created_at": ts(r.created_at),
                "updated_at": ts(r.updated_at),
                "guardrails": config.guardrails(r.guardrails),
                "catch_up": _CATCH_UP[r.catch_up],
                "delivery": _DELIVERY[r.delivery],
                "overlap": _OVERLAP[r.overlap],
                "max_in_flight": r.max_in_flight,
                "jitter": timedelta(microseconds=r.jitter_us),
                "tier": r.tier,
                "description": r.description,
                "planner_enabled": bool(r.planner_enabled),
                "interval_hint": doc.hint_from(r.interval_hint),
                "one_shots": doc.one_shots_from(r.one_shots),
                "pause": doc.pause_from(r.pause),
                "archived_at": ts(r.archived_at),
                "next_run_at": ts(r.next_run_at),
                "next_run_source": None
                if r.next_run_source is None
                else _SOURCES[r.next_run_source],
                "last_run_at": ts(r.last_run_at),
                "last_scheduled_for": ts(r.last_scheduled_for),
                "last_status": None if r.last_status is None else _STATUSES[r.last_status],
                "failure_count": r.failure_count,
                "success_streak": r.success_streak,
                "attempt": r.attempt,
                "retry_after_until": ts(r.retry_after_until),
                "lease": lease,
                "in_flight": r.in_flight,
            }
        )

    # Jobs -----------------------------------------------------------------------

    @staticmethod
    def job_row(job: Job) -> dict[str, Any]:
        pause = job.pause
        return {
            "id": job.id,
            "tenant_id": job.tenant_id,
            "name": job.name,
            "description": job.description,
            "tags": doc.dumps(list(job.tags)),
            "pause": doc.pause_text(pause),
            "paused": pause is not None,
            "paused_until": None if pause is None else pause.until,
            "planner_enabled": job.planner_enabled,
            "archived_at": job.archived_at,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "revision": 0,
        }

    @staticmethod
    def job(values: Sequence[Any], ts: Timestamps = _same) -> Job:
        """From a row holding the jobs table's columns, in order."""
        r = _JobRow._make(values)
        return Job(
            id=r.id,
            tenant_id=r.tenant_id,
            name=r.name,
            created_at=ts(r.created_at),
            updated_at=ts(r.updated_at),
            description=r.description,
            tags=tuple(json.loads(r.tags)),
            pause=doc.pause_from(r.pause),
            planner_enabled=bool(r.planner_enabled),
            archived_at=ts(r.archived_at),
        )

    # Runs -----------------------------------------------------------------------

    @staticmethod
    def run_row(run: Run) -> dict[str, Any]:
        resp = run.response
        return {
            "id": run.id,
            "endpoint_id": run.endpoint_id,
            "job_id": run.job_id,
            "tenant_id": run.tenant_id,
            "scheduled_for": run.scheduled_for,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "status": run.status.value,
            "source": run.source.value,
            "attempt": run.attempt,
            "missed_slots": run.missed_slots,
            "http_status": run.http_status,
            "error": run.error,
            "response_body": None if resp is None else resp.body,
            "response_meta": response_meta(resp),
            "worker_id": run.worker_id,
            "http_attempts": run.http_attempts,
        }

    @staticmethod
    def run(values: Sequence[Any], ts: Timestamps = _same) -> Run:
        """From a row holding the runs table's columns, in order."""
        r = _RunRow._make(values)
        return Run(
            id=r.id,
            endpoint_id=r.endpoint_id,
            job_id=r.job_id,
            tenant_id=r.tenant_id,
            scheduled_for=ts(r.scheduled_for),
            started_at=ts(r.started_at),
            finished_at=ts(r.finished_at),
            status=_STATUSES[r.status],
            source=_SOURCES[r.source],
            attempt=r.attempt,
            missed_slots=r.missed_slots,
            http_status=r.http_status,
            error=r.error,
            response=_response(r.response_body, r.response_meta),
            worker_id=r.worker_id,
            http_attempts=r.http_attempts,
        )

    # Audit, identity, workers -----------------------------------------------------

    @staticmethod
    def audit_row(event: AuditEvent) -> dict[str, Any]:
        return {
            "id": event.id,
            "tenant_id": event.tenant_id,
            "at": event.at,
            "actor_kind": event.actor.kind.value,
            "actor_id": event.actor.id,
            "actor_name": event.actor.name,
            "action": event.action,
            "target_kind": event.target_kind,
            "target_id": event.target_id,
            "reason": event.reason,
            "changes": doc.dumps(event.changes),
        }

    @staticmethod
    def audit(r: Row) -> AuditEvent:
        return AuditEvent(
            id=r.id,
            tenant_id=r.tenant_id,
            at=r.at,
            actor=Actor(ActorKind(r.actor_kind), r.actor_id, r.actor_name),
            action=r.action,
            target_kind=r.target_kind,
            target_id=r.target_id,
            reason=r.reason,
            changes=json.loads(r.changes),
        )

    @staticmethod
    def user_row(user: User) -> dict[str, Any]:
        return {
            "id": user.id,
            "email": user.email,
            "password_hash": user.password_hash,
            "is_admin": user.is_admin,
            "created_at": user.created_at,
        }

    @staticmethod
    def user(r: Row) -> User:
        return User(r.id, r.email, r.password_hash, r.created_at, r.is_admin)

    @staticmethod
    def api_key_row(key: ApiKey) -> dict[str, Any]:
        return {
            "id": key.id,
            "tenant_id": key.tenant_id,
            "name": key.name,
            "prefix": key.prefix,
            "digest": key.digest,
            "scopes": doc.dumps(sorted(s.value for s in key.scopes)),
            "kind": key.kind.value,
            "created_at": key.created_at,
            "expires_at": key.expires_at,
            "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at,
        }

    @staticmethod
    def api_key(r: Row) -> ApiKey:
        return ApiKey(
            id=r.id,
            tenant_id=r.tenant_id,
            name=r.name,
            prefix=r.prefix,
            digest=r.digest,
            scopes=frozenset(Scope(s) for s in json.loads(r.scopes)),
            kind=KeyKind(r.kind),
            created_at=r.created_at,
            expires_at=r.expires_at,
            last_used_at=r.last_used_at,
            revoked_at=r.revoked_at,
        )

    @staticmethod
    def worker_row(info: WorkerInfo) -> dict[str, Any]:
        return {
            "id": info.id,
            "host": info.host,
            "pid": info.pid,
            "started_at": info.started_at,
            "heartbeat_at": info.heartbeat_at,
        }

    @staticmethod
    def worker(r: Row) -> WorkerInfo:
        return WorkerInfo(r.id, r.host, r.pid, r.started_at, r.heartbeat_at)
