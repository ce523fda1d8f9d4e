"""Jobs: create, read, list, update, archive, pause and resume.

Pausing, resuming and archiving a job change the schedule of every endpoint in it,
so those replan each live endpoint in the same transaction and wake the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from pydantic import Field

from cadenza.actions.base import Action, Context, Example, record
from cadenza.actions.endpoint_models import PauseOut
from cadenza.actions.runs import RunOut
from cadenza.actions.scheduling import EndpointScheduleOut, replan_job_endpoints
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    ActorOut,
    Cursor,
    Description,
    Input,
    Name,
    Output,
    PageLimit,
    Reason,
    UtcTime,
    id_field,
    rfc3339,
)
from cadenza.domain import errors, limits
from cadenza.domain.identity import Scope
from cadenza.domain.model import Job, Pause
from cadenza.ids import new_id
from cadenza.ports import JobStatus, RunFilter

_JOB = EXAMPLE_IDS["job_id"]
_JOB_ID = id_field("job", _JOB)
_RECENT_RUNS = 50
_COUNT_CAP = 1000

Tags = list[str]


def _tags_field() -> Tags:
    return Field(
        default_factory=list,
        max_length=limits.MAX_TAGS,
        description=f"Free labels, at most {limits.MAX_TAGS}.",
        examples=[["billing", "nightly"]],
    )


class JobOut(Output):
    id: str
    name: str
    description: str
    tags: list[str]
    status: JobStatus = Field(description="active, paused or archived.")
    pause: PauseOut | None = Field(description="The job's pause while in force.")
    planner_enabled: bool
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @classmethod
    def of(cls, job: Job, now: datetime) -> JobOut:
        pause = job.pause if job.paused(now) else None
        actor = None if pause is None else ActorOut.of(pause.actor)
        return cls(
            id=job.id,
            name=job.name,
            description=job.description,
            tags=list(job.tags),
            status=_status(job, now),
            pause=(
                None
                if pause is None or actor is None
                else PauseOut(until=pause.until, reason=pause.reason, actor=actor)
            ),
            planner_enabled=job.planner_enabled,
            created_at=job.created_at,
            updated_at=job.updated_at,
            archived_at=job.archived_at,
        )


def _status(job: Job, now: datetime) -> JobStatus:
    if job.archived:
        return JobStatus.ARCHIVED
    return JobStatus.PAUSED if job.paused(now) else JobStatus.ACTIVE


class CreateJobInput(Input):
    name: Name
    description: Description = ""
    tags: Tags = _tags_field()
    planner_enabled: bool = Field(True, description="Let the planner write hints here.")
    reason: Reason = ""


async def create_job(ctx: Context, data: CreateJobInput) -> JobOut:
    now = ctx.now()
    job = Job(
        id=new_id("job", now),
        tenant_id=ctx.tenant_id,
        name=data.name,
        created_at=now,
        updated_at=now,
        description=data.description,
        tags=tuple(data.tags),
        planner_enabled=data.planner_enabled,
    )
    async with ctx.store.transaction() as tx:
        await tx.insert_job(job)
        await record(ctx, tx, "create_job", ("job", job.id), data.reason, {"name": job.name})
    return JobOut.of(job, now)


class GetJobInput(Input):
    job_id: str = _JOB_ID


class JobDetailOut(JobOut):
    endpoint_count: int = Field(description=f"Live endpoints, counted up to {_COUNT_CAP}.")
    last_run: RunOut | None = Field(description="The job's most recent run.")
    recent_runs: int = Field(description=f"Runs looked at for health (at most {_RECENT_RUNS}).")
    recent_success_rate: float | None = Field(description="Share of them that succeeded.")


async def get_job(ctx: Context, data: GetJobInput) -> JobDetailOut:
    now = ctx.now()
    async with ctx.store.transaction(readonly=True) as tx:
        job = await tx.get_job(ctx.tenant_id, data.job_id)
        endpoints = await tx.list_endpoints(
            ctx.tenant_id, job.id, include_archived=False, cursor=None, limit=_COUNT_CAP
        )
        runs = await tx.list_runs(
            ctx.tenant_id, RunFilter(job_id=job.id), cursor=None, limit=_RECENT_RUNS
        )
    ok = sum(1 for r in runs.items if r.status.ok)
    return JobDetailOut(
        **JobOut.of(job, now).model_dump(),
        endpoint_count=len(endpoints.items),
        last_run=RunOut.of(runs.items[0]) if runs.items else None,
        recent_runs=len(runs.items),
        recent_success_rate=ok / len(runs.items) if runs.items else None,
    )


class ListJobsInput(Input):
    status: JobStatus | None = Field(None, description="Only jobs in this state.")
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class JobPage(Output):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


async def list_jobs(ctx: Context, data: ListJobsInput) -> JobPage:
    now = ctx.now()
    async with ctx.store.transaction(readonly=True) as tx:
        page = await tx.list_jobs(
            ctx.tenant_id, status=data.status, now=now, cursor=data.cursor, limit=data.limit
        )
    return JobPage(items=[JobOut.of(j, now) for j in page.items], next_cursor=page.next_cursor)


class UpdateJobInput(Input):
    job_id: str = _JOB_ID
    name: Name | None = None
    description: Description | None = None
    tags: Tags | None = Field(None, max_length=limits.MAX_TAGS)
    planner_enabled: bool | None = None
    reason: Reason = ""


async def update_job(ctx: Context, data: UpdateJobInput) -> JobOut:
    now = ctx.now()
    fields = data.model_dump(exclude_unset=True, exclude={"job_id", "reason"}, exclude_none=True)
    async with ctx.store.transaction() as tx:
        job = await tx.get_job(ctx.tenant_id, data.job_id, for_update=True)
        if job.archived:
            raise errors.Archived(f"Job {job.id!r} is archived.")
        if "tags" in fields:
            fields["tags"] = tuple(fields["tags"])
        updated = replace(job, **fields, updated_at=now)
        await tx.update_job(updated)
        await record(ctx, tx, "update_job", ("job", job.id), data.reason, _jsonable(fields))
    return JobOut.of(updated, now)


def _jsonable(fields: dict[str, object]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


class JobChangeInput(Input):
    job_id: str = _JOB_ID
    reason: Reason = ""


class PauseJobInput(JobChangeInput):
    until: UtcTime | None = Field(None, description="Resume by itself then; null: until resumed.")


class JobScheduleOut(Output):
    job: JobOut
    endpoints: list[EndpointScheduleOut] = Field(description="Each live endpoint, replanned.")
    audit_event_id: str


async def _change_job(
    ctx: Context, data: JobChangeInput, action: str, change: Callable[[Job, datetime], Job]
) -> JobScheduleOut:
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        job = await tx.get_job(ctx.tenant_id, data.job_id, for_update=True)
        if job.archived:
            raise errors.Archived(f"Job {job.id!r} is archived; its schedules are frozen.")
        updated = replace(change(job, now), updated_at=now)
        await tx.update_job(updated)
        plans = await replan_job_endpoints(ctx, tx, updated, now)
        until = updated.pause.until if updated.pause else None
        changes = {"paused": updated.pause is not None, "paused_until": _iso(until)}
        event = await record(ctx, tx, action, ("job", job.id), data.reason, changes)
    ctx.services.waker.wake()
    return JobScheduleOut(job=JobOut.of(updated, now), endpoints=plans, audit_event_id=event.id)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


async def pause_job(ctx: Context, data: PauseJobInput) -> JobScheduleOut:
    if data.until is not None and data.until <= ctx.now():
        raise errors.ValidationError("until must be in the future.", "until")
    pause = Pause(until=data.until, reason=data.reason, actor=ctx.actor)
    return await _change_job(ctx, data, "pause_job", lambda job, _: replace(job, pause=pause))


async def resume_job(ctx: Context, data: JobChangeInput) -> JobScheduleOut:
    return await _change_job(ctx, data, "resume_job", lambda job, _: replace(job, pause=None))


async def archive_job(ctx: Context, data: JobChangeInput) -> JobScheduleOut:
    return await _change_job(
        ctx, data, "archive_job", lambda job, now: replace(job, archived_at=now)
    )


_READ = frozenset({Scope.JOBS_READ})
_WRITE = frozenset({Scope.JOBS_WRITE})
_CONTROL = frozenset({Scope.SCHEDULE_CONTROL})

ACTIONS = (
    Action(
        name="create_job",
        summary="Create a job",
        description=(
            "Creates an empty job: a named group of endpoints that can be paused, resumed "
            "and archived together. Add endpoints with add_endpoint."
        ),
        input_model=CreateJobInput,
        output_model=JobOut,
        handler=create_job,
        scopes=_WRITE,
        method="POST",
        path="/jobs",
        mutates=True,
        idempotent=False,
        success_status=201,
        examples=(
            Example(
                {"name": "billing-sync", "tags": ["billing"], "reason": "new integration"},
                "A job for the billing endpoints.",
            ),
        ),
    ),
    Action(
        name="get_job",
        summary="One job with counts and recent health",
        description=(
            "Returns a job, the number of its live endpoints, its latest run and the success "
            f"rate of its last {_RECENT_RUNS} runs. Use list_endpoints for the endpoints."
        ),
        input_model=GetJobInput,
        output_model=JobDetailOut,
        handler=get_job,
        scopes=_READ,
        method="GET",
        path="/jobs/{job_id}",
        mutates=False,
        idempotent=True,
        examples=(Example({"job_id": _JOB}),),
    ),
    Action(
        name="list_jobs",
        summary="List jobs",
        description=(
            "Lists the caller's jobs, newest first, optionally only active, paused or "
            "archived ones. Pages by keyset: pass next_cursor back as cursor; no totals."
        ),
        input_model=ListJobsInput,
        output_model=JobPage,
        handler=list_jobs,
        scopes=_READ,
        method="GET",
        path="/jobs",
        mutates=False,
        idempotent=True,
        examples=(Example({"status": "paused", "limit": 20}, "The paused jobs."),),
    ),
    Action(
        name="update_job",
        summary="Rename or re-describe a job",
        description=(
            "Changes a job's name, description, tags or planner switch; omitted fields stay. "
            "Schedules are unaffected (use pause_job/resume_job for those)."
        ),
        input_model=UpdateJobInput,
        output_model=JobOut,
        handler=update_job,
        scopes=_WRITE,
        method="PATCH",
        path="/jobs/{job_id}",
        mutates=True,
        idempotent=True,
        examples=(
            Example({"job_id": _JOB, "name": "billing-sync-eu", "reason": "one job per region"}),
        ),
    ),
    Action(
        name="archive_job",
        summary="Archive a job (soft delete)",
        description=(
            "Stops scheduling every endpoint of the job for good; runs and audit history are "
            "kept and stay readable. Archived jobs refuse further schedule changes."
        ),
        input_model=JobChangeInput,
        output_model=JobScheduleOut,
        handler=archive_job,
        scopes=_WRITE,
        method="DELETE",
        path="/jobs/{job_id}",
        mutates=True,
        idempotent=False,
        destructive=True,
        examples=(Example({"job_id": _JOB, "reason": "replaced by billing-v2"}),),
    ),
    Action(
        name="pause_job",
        summary="Pause every endpoint of a job",
        description=(
            "Pauses the whole job until a time (RFC 3339) or, with until null, until "
            "resume_job. Each endpoint is replanned at once."
        ),
        input_model=PauseJobInput,
        output_model=JobScheduleOut,
        handler=pause_job,
        scopes=_CONTROL,
        method="POST",
        path="/jobs/{job_id}/pause",
        mutates=True,
        idempotent=True,
        examples=(
            Example(
                {"job_id": _JOB, "until": "2030-01-01T06:00:00Z", "reason": "maintenance window"}
            ),
        ),
    ),
    Action(
        name="resume_job",
        summary="Resume a paused job",
        description=(
            "Lifts the job's pause; each endpoint is replanned at once (its own pause, if "
            "any, still applies)."
        ),
        input_model=JobChangeInput,
        output_model=JobScheduleOut,
        handler=resume_job,
        scopes=_CONTROL,
        method="POST",
        path="/jobs/{job_id}/resume",
        mutates=True,
        idempotent=True,
        examples=(Example({"job_id": _JOB, "reason": "maintenance over"}),),
    ),
)
