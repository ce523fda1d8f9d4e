"""Rows to entities and back.

Row dicts are keyed by column name; ``from_*`` functions read any object with the
columns as attributes (a SQLAlchemy ``Row``). Enums are stored by value, nested
configuration as JSON text (``documents``), timestamps through ``UtcDateTime``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import timedelta
from typing import Any

from cadenza.adapters.store import documents as doc
from cadenza.adapters.store.tables import endpoints, jobs
from cadenza.domain.identity import ApiKey, KeyKind, Scope, User
from cadenza.domain.model import (
    Actor,
    ActorKind,
    AuditEvent,
    CatchUp,
    Endpoint,
    Job,
    Lease,
    PlanSource,
    ResponseCapture,
    Run,
    RunStatus,
)
from cadenza.ports import SecretBox, WorkerInfo

Row = Any
"""A result row: columns as attributes, or by position in table order."""

ENDPOINT_COLUMNS = (
    "id", "job_id", "tenant_id", "name", "description", "tier", "request", "baseline",
    "guardrails", "catch_up", "jitter_us", "planner_enabled", "interval_hint", "one_shot",
    "pause", "archived_at", "created_at", "updated_at", "next_run_at", "next_run_source",
    "last_run_at", "last_scheduled_for", "last_status", "failure_count", "success_streak",
    "attempt", "lease_budget_us", "lease_owner", "lease_until", "lease_epoch", "lease_slot",
    "lease_claimed_at", "revision",
)  # fmt: skip
JOB_COLUMNS = (
    "id", "tenant_id", "name", "description", "tags", "pause", "paused", "paused_until",
    "planner_enabled", "archived_at", "created_at", "updated_at", "revision",
)  # fmt: skip
ENDPOINT_WIDTH = len(ENDPOINT_COLUMNS)
JOB_WIDTH = len(JOB_COLUMNS)
# Positional decoding must follow the tables; fail at import, not with shifted data.
if tuple(endpoints.c.keys()) != ENDPOINT_COLUMNS or tuple(jobs.c.keys()) != JOB_COLUMNS:
    raise RuntimeError("codec column order differs from tables.py")

_ENDPOINT_FIELDS = (
    "id", "job_id", "tenant_id", "name", "request", "baseline", "created_at", "updated_at",
    "guardrails", "catch_up", "jitter", "tier", "description", "planner_enabled",
    "interval_hint", "one_shot", "pause", "archived_at", "next_run_at", "next_run_source",
    "last_run_at", "last_scheduled_for", "last_status", "failure_count", "success_streak",
    "attempt", "lease",
)  # fmt: skip
# Codec.endpoint passes the fields by position; fail at import, not with shifted data.
if tuple(f.name for f in fields(Endpoint)) != _ENDPOINT_FIELDS:
    raise RuntimeError("Codec.endpoint field order differs from model.Endpoint")

_CATCH_UP = {c.value: c for c in CatchUp}
_SOURCES = {s.value: s for s in PlanSource}
_STATUSES = {s.value: s for s in RunStatus}
_ZERO = timedelta(0)


def _same(value: Any) -> Any:
    return value


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

    # Endpoints --------------------------------------------------------------

    def endpoint_row(self, ep: Endpoint) -> dict[str, Any]:
        lease = ep.lease
        return {
            "id": ep.id,
            "job_id": ep.job_id,
            "tenant_id": ep.tenant_id,
            **self.endpoint_config(ep),
            **doc.endpoint_state(ep),
            "lease_owner": None if lease is None else lease.owner,
            "lease_until": None if lease is None else lease.until,
            "lease_epoch": 0 if lease is None else lease.epoch,
            "lease_slot": None if lease is None else ep.next_run_at,
            "lease_claimed_at": None,
            "revision": 0,
        }

    def endpoint_config(self, ep: Endpoint) -> dict[str, Any]:
        """Every column but the id, the owners, and the runtime state."""
        return {
            "name": ep.name,
            "description": ep.description,
            "tier": ep.tier,
            "request": self.config.request_text(ep.request),
            "baseline": doc.baseline_text(ep.baseline),
            "guardrails": doc.guardrails_text(ep.guardrails),
            "catch_up": ep.catch_up.value,
            "jitter_us": doc.micros(ep.jitter),
            "planner_enabled": ep.planner_enabled,
            "archived_at": ep.archived_at,
            "created_at": ep.created_at,
            "updated_at": ep.updated_at,
            "lease_budget_us": doc.micros(ep.request.lease_budget),
        }

    def endpoint(self, r: Row, ts: Callable[[Any], Any] = _same) -> Endpoint:
        """From a row whose first columns are the endpoints table's, in order.

        Unpacked by position: attribute access on a SQLAlchemy row costs about a
        microsecond, and this runs twice per claimed endpoint. ``ts`` converts
        timestamps of raw driver rows (``hot``); SQLAlchemy rows are converted already.
        The columns unpacked as unused may be NULL: the claim does not return them.
        """
        (
            id_, job_id, tenant_id, name, description, tier, request, baseline, guardrails,
            catch_up, jitter_us, planner_enabled, interval_hint, one_shot, pause,
            archived_at, created_at, updated_at, next_run_at, next_run_source, last_run_at,
            last_scheduled_for, last_status, failure_count, success_streak, attempt,
            _budget, lease_owner, lease_until, lease_epoch, _slot, _claimed_at, _revision,
        ) = r[:ENDPOINT_WIDTH]  # fmt: skip
        config = self.config
        return Endpoint(
            id_,
            job_id,
            tenant_id,
            name,
            config.request(request),
            config.baseline(baseline),
            ts(created_at),
            ts(updated_at),
            config.guardrails(guardrails),
            _CATCH_UP[catch_up],
            timedelta(microseconds=jitter_us) if jitter_us else _ZERO,
            tier,
            description,
            planner_enabled,
            None if interval_hint is None else doc.hint_from(interval_hint),
            None if one_shot is None else doc.one_shot_from(one_shot),
            None if pause is None else doc.pause_from(pause),
            ts(archived_at),
            ts(next_run_at),
            None if next_run_source is None else _SOURCES[next_run_source],
            ts(last_run_at),
            ts(last_scheduled_for),
            None if last_status is None else _STATUSES[last_status],
            failure_count,
            success_streak,
            attempt,
            None if lease_owner is None else Lease(lease_owner, ts(lease_until), lease_epoch),
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
    def job(r: Row, offset: int = 0, ts: Callable[[Any], Any] = _same) -> Job:
        """From a row holding the jobs table's columns, in order, from ``offset``."""
        (
            id_, tenant_id, name, description, tags, pause, _paused, _until,
            planner_enabled, archived_at, created_at, updated_at, _revision,
        ) = r[offset : offset + JOB_WIDTH]  # fmt: skip
        return Job(
            id=id_,
            tenant_id=tenant_id,
            name=name,
            created_at=ts(created_at),
            updated_at=ts(updated_at),
            description=description,
            tags=tuple(json.loads(tags)),
            pause=None if pause is None else doc.pause_from(pause),
            planner_enabled=planner_enabled,
            archived_at=ts(archived_at),
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
            "response_meta": Codec.response_meta(resp),
            "worker_id": run.worker_id,
        }

    @staticmethod
    def response_meta(resp: ResponseCapture | None) -> str | None:
        if resp is None:
            return None
        return doc.dumps(
            [resp.content_type, resp.size, resp.truncated, [list(h) for h in resp.headers]]
        )

    @staticmethod
    def run(r: Row) -> Run:
        return Run(
            id=r.id,
            endpoint_id=r.endpoint_id,
            job_id=r.job_id,
            tenant_id=r.tenant_id,
            scheduled_for=r.scheduled_for,
            started_at=r.started_at,
            finished_at=r.finished_at,
            status=RunStatus(r.status),
            source=PlanSource(r.source),
            attempt=r.attempt,
            missed_slots=r.missed_slots,
            http_status=r.http_status,
            error=r.error,
            response=_response(r.response_body, r.response_meta),
            worker_id=r.worker_id,
        )

    @staticmethod
    def run_from_driver(r: Sequence[Any], ts: Callable[[Any], Any]) -> Run:
        """From a raw driver row in the runs table's column order; ``ts`` converts its
        timestamps. By position and without the dataclass's ``__init__``: pages of
        runs are the REST API's hottest read (``SqlTx.list_runs``)."""
        (
            id_, endpoint_id, job_id, tenant_id, scheduled_for, started_at, finished_at,
            status, source, attempt, missed_slots, http_status, error, body, meta, worker_id,
        ) = r  # fmt: skip
        return Run(
            id_, endpoint_id, job_id, tenant_id, ts(scheduled_for), ts(started_at),
            ts(finished_at), _STATUSES[status], _SOURCES[source], attempt, missed_slots,
            http_status, error, _response(body, meta), worker_id,
        )  # fmt: skip

    # Audit, identity, workers -----------------------------------------------

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
