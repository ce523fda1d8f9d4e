"""Endpoints: add, read, list, update, delete (soft) and test.

Adding or updating an endpoint replans it at once inside the write's transaction.
Input models check shape and limits; the domain constructors (``Request``,
``CronSchedule``, ``Guardrails`` …) check the invariants and raise typed errors
that name the field. A URL whose host is a literal address the SSRF guard refuses is
refused when saved (``targets.refuse_unreachable``), not only when it runs. Secret
header values are bound to their URL's origin (``endpoint_models.build_request``); an update
that moves the URL records the old and the new one in the audit entry.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from cadenza.actions.base import Action, Context, Example, record
from cadenza.actions.endpoint_models import (
    DELIVERY_TEXT,
    MAX_JITTER_S,
    ON_DEMAND_TEXT,
    SECRET_MASK,
    BaselineSpec,
    EndpointFields,
    EndpointOut,
    IntervalSeconds,
    RequestPatch,
    build_baseline,
    build_request,
    endpoint_out,
    in_flight_bound,
    merge_request,
    refuse_empty_placeholders,
)
from cadenza.actions.runs import ResponseOut, response_out
from cadenza.actions.scheduling import refuse_archived
from cadenza.actions.targets import refuse_unreachable
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    Cursor,
    Description,
    Input,
    Name,
    Output,
    PageLimit,
    Reason,
    duration,
    id_field,
)
from cadenza.domain import errors, limits
from cadenza.domain.identity import Scope
from cadenza.domain.lifecycle import replan
from cadenza.domain.model import CatchUp, Delivery, Endpoint, Guardrails, Overlap, RunStatus
from cadenza.domain.schedule import Baseline
from cadenza.ids import new_id

_ENDPOINT = EXAMPLE_IDS["endpoint_id"]
_JOB = EXAMPLE_IDS["job_id"]
ENDPOINT_ID = id_field("endpoint", _ENDPOINT)
_JOB_ID = id_field("job", _JOB)


class AddEndpointInput(EndpointFields):
    job_id: str = _JOB_ID
    reason: Reason = ""


class UpdateEndpointInput(Input):
    """Every field is optional; omitted fields keep their value, and a null
    min/max interval removes that guardrail."""

    endpoint_id: str = ENDPOINT_ID
    name: Name | None = None
    description: Description | None = None
    tier: str | None = Field(None, max_length=64)
    request: RequestPatch | None = None
    baseline: BaselineSpec | None = Field(None, description=ON_DEMAND_TEXT)
    min_interval_seconds: IntervalSeconds | None = None
    max_interval_seconds: IntervalSeconds | None = None
    catch_up: CatchUp | None = None
    delivery: Delivery | None = Field(None, description=DELIVERY_TEXT)
    overlap: Overlap | None = None
    max_in_flight: int | None = None
    jitter_seconds: float | None = Field(None, ge=0, le=MAX_JITTER_S)
    planner_enabled: bool | None = None
    reason: Reason = ""


async def add_endpoint(ctx: Context, data: AddEndpointInput) -> EndpointOut:
    now = ctx.now()
    refuse_empty_placeholders(data.request, None)
    endpoint = Endpoint(
        id=new_id("ep", now),
        job_id=data.job_id,
        tenant_id=ctx.tenant_id,
        name=data.name,
        created_at=now,
        updated_at=now,
        **data.configuration(),
    )
    refuse_unreachable(ctx, endpoint.request.url)  # after the URL's own checks
    async with ctx.store.transaction() as tx:
        job = await tx.get_job(ctx.tenant_id, data.job_id)
        if job.archived:
            raise errors.Archived(f"Job {job.id!r} is archived; add endpoints to a live job.")
        endpoint = replan(endpoint, job, now)
        await tx.insert_endpoint(endpoint)
        changes = {"name": endpoint.name, "job_id": job.id}
        await record(ctx, tx, "add_endpoint", ("endpoint", endpoint.id), data.reason, changes)
    ctx.services.waker.wake()
    return endpoint_out(endpoint, now)


def _reconfigured(endpoint: Endpoint, data: UpdateEndpointInput, now: datetime) -> Endpoint:
    given = data.model_fields_set
    rails = endpoint.guardrails
    return replace(
        endpoint,
        name=data.name if data.name is not None else endpoint.name,
        description=data.description if data.description is not None else endpoint.description,
        tier=data.tier if data.tier is not None else endpoint.tier,
        request=(
            build_request(merge_request(endpoint.request, data.request), endpoint.request)
            if data.request
            else endpoint.request
        ),
        baseline=_baseline(data, endpoint),
        guardrails=Guardrails(
            duration(data.min_interval_seconds)
            if "min_interval_seconds" in given
            else rails.min_interval,
            duration(data.max_interval_seconds)
            if "max_interval_seconds" in given
            else rails.max_interval,
        ),
        catch_up=data.catch_up or endpoint.catch_up,
        delivery=data.delivery or endpoint.delivery,
        overlap=data.overlap or endpoint.overlap,
        max_in_flight=in_flight_bound(
            data.overlap or endpoint.overlap, data.max_in_flight, endpoint
        ),
        jitter=(
            timedelta(seconds=data.jitter_seconds)
            if data.jitter_seconds is not None
            else endpoint.jitter
        ),
        planner_enabled=(
            data.planner_enabled if data.planner_enabled is not None else endpoint.planner_enabled
        ),
        updated_at=now,
    )


def _baseline(data: UpdateEndpointInput, endpoint: Endpoint) -> Baseline | None:
    """A given baseline replaces the stored one; a given null removes it (on demand)."""
    if "baseline" not in data.model_fields_set:
        return endpoint.baseline
    return None if data.baseline is None else build_baseline(data.baseline)


async def update_endpoint(ctx: Context, data: UpdateEndpointInput) -> EndpointOut:
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, data.endpoint_id, for_update=True)
        job = await tx.get_job(ctx.tenant_id, endpoint.job_id)
        refuse_archived(endpoint, job)
        updated = replan(_reconfigured(endpoint, data, now), job, now)
        if data.request is not None:
            refuse_unreachable(ctx, updated.request.url)
        await tx.update_endpoint(updated)
        changes = _update_changes(data, endpoint, updated)
        await record(ctx, tx, "update_endpoint", ("endpoint", endpoint.id), data.reason, changes)
    ctx.services.waker.wake()
    return endpoint_out(updated, now)


def _update_changes(data: UpdateEndpointInput, before: Endpoint, after: Endpoint) -> dict[str, Any]:
    """The audit entry's changes: the fields given and, when the URL moved, where
    from and to, and the secret headers left behind at the old origin."""
    changes: dict[str, Any] = {"fields": sorted(data.model_fields_set - {"endpoint_id", "reason"})}
    if before.request.url != after.request.url:
        changes["url"] = {"from": before.request.url, "to": after.request.url}
    if data.request is not None:
        kept = {h.name.lower() for h in after.request.headers}
        masked = [h.name for h in data.request.headers if h.secret and h.value == SECRET_MASK]
        dropped = [name for name in masked if name.lower() not in kept]
        if dropped:
            changes["dropped_secret_headers"] = dropped
    return changes


class EndpointRef(Input):
    endpoint_id: str = ENDPOINT_ID


class EndpointChangeInput(EndpointRef):
    reason: Reason = ""


async def get_endpoint(ctx: Context, data: EndpointRef) -> EndpointOut:
    async with ctx.store.transaction(readonly=True) as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
    return endpoint_out(endpoint, ctx.now())


async def delete_endpoint(ctx: Context, data: EndpointChangeInput) -> EndpointOut:
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, data.endpoint_id, for_update=True)
        if endpoint.archived:
            raise errors.Archived(f"Endpoint {endpoint.id!r} is already deleted.")
        job = await tx.get_job(ctx.tenant_id, endpoint.job_id)
        updated = replan(replace(endpoint, archived_at=now, updated_at=now), job, now)
        await tx.update_endpoint(updated)
        await record(ctx, tx, "delete_endpoint", ("endpoint", endpoint.id), data.reason)
    ctx.services.waker.wake()
    return endpoint_out(updated, now)


class ListEndpointsInput(Input):
    job_id: str = _JOB_ID
    include_archived: bool = Field(False, description="Also list deleted endpoints.")
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class EndpointPage(Output):
    items: list[EndpointOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


async def list_endpoints(ctx: Context, data: ListEndpointsInput) -> EndpointPage:
    now = ctx.now()
    async with ctx.store.transaction(readonly=True) as tx:
        await tx.get_job(ctx.tenant_id, data.job_id)  # another tenant's job: JobNotFound
        page = await tx.list_endpoints(
            ctx.tenant_id,
            data.job_id,
            include_archived=data.include_archived,
            cursor=data.cursor,
            limit=data.limit,
        )
    return EndpointPage(
        items=[endpoint_out(e, now) for e in page.items], next_cursor=page.next_cursor
    )


class TestResultOut(Output):
    success: bool = Field(description="The endpoint's success rule held.")
    status: RunStatus
    http_status: int | None
    error: str
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    attempts: int
    response: ResponseOut | None


async def test_endpoint(ctx: Context, data: EndpointChangeInput) -> TestResultOut:
    async with ctx.store.transaction(readonly=True) as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
    result = await ctx.services.dispatcher.dispatch(endpoint, ctx.now())
    async with ctx.store.transaction() as tx:
        changes: dict[str, Any] = {"status": result.status.value, "http_status": result.http_status}
        await record(ctx, tx, "test_endpoint", ("endpoint", endpoint.id), data.reason, changes)
    return TestResultOut(
        success=result.status.ok,
        status=result.status,
        http_status=result.http_status,
        error=result.error,
        started_at=result.started_at,
        finished_at=result.finished_at,
        duration_seconds=(result.finished_at - result.started_at).total_seconds(),
        attempts=result.attempts,
        response=response_out(result.response),
    )


_READ = frozenset({Scope.JOBS_READ})
_WRITE = frozenset({Scope.JOBS_WRITE})

ACTIONS = (
    Action(
        name="add_endpoint",
        summary="Add an HTTP endpoint to a job",
        description=(
            "Adds an HTTP request with a baseline schedule to a job and schedules it at once "
            "(no baseline: on demand). Baseline: cron (5 fields, optional 6th for seconds, or "
            "@daily-style macros) with an IANA timezone, or interval_seconds (>= 1) with an "
            "optional start_at. Guardrails min_interval_seconds/max_interval_seconds bound "
            "every cadence, hints included. Secret header values are stored encrypted and "
            "never shown again."
        ),
        input_model=AddEndpointInput,
        output_model=EndpointOut,
        handler=add_endpoint,
        scopes=_WRITE,
        method="POST",
        path="/jobs/{job_id}/endpoints",
        mutates=True,
        idempotent=False,
        success_status=201,
        examples=(
            Example(
                {
                    "job_id": _JOB,
                    "name": "health",
                    "request": {"url": "https://example.com/health"},
                    "baseline": {"interval_seconds": 300},
                    "min_interval_seconds": 30,
                },
                "A health check every 5 minutes, never more often than every 30 s.",
            ),
            Example(
                {
                    "job_id": _JOB,
                    "name": "daily-report",
                    "request": {
                        "method": "POST",
                        "url": "https://example.com/reports",
                        "headers": [{"name": "Authorization", "value": "Bearer t", "secret": True}],
                        "body": {"json": {"period": "day"}},
                    },
                    "baseline": {"cron": "0 6 * * *", "timezone": "Europe/Berlin"},
                },
                "A report at 06:00 Berlin time with a secret header.",
            ),
        ),
    ),
    Action(
        name="get_endpoint",
        summary="One endpoint with state, hints and next run",
        description=(
            "Returns an endpoint's configuration (secret header values masked), its runtime "
            "state (next_run_at and the rule that chose it, last run, failure count), and "
            "the hints in force. Use explain_schedule for the full reasoning."
        ),
        input_model=EndpointRef,
        output_model=EndpointOut,
        handler=get_endpoint,
        scopes=_READ,
        method="GET",
        path="/endpoints/{endpoint_id}",
        mutates=False,
        idempotent=True,
        examples=(Example({"endpoint_id": _ENDPOINT}),),
    ),
    Action(
        name="list_endpoints",
        summary="List a job's endpoints",
        description=(
            "Lists the endpoints of one job, oldest first, deleted ones only when asked. "
            "Pages by keyset: pass next_cursor back as cursor; no totals."
        ),
        input_model=ListEndpointsInput,
        output_model=EndpointPage,
        handler=list_endpoints,
        scopes=_READ,
        method="GET",
        path="/jobs/{job_id}/endpoints",
        mutates=False,
        idempotent=True,
        examples=(Example({"job_id": _JOB, "limit": 20}),),
    ),
    Action(
        name="update_endpoint",
        summary="Change an endpoint's configuration",
        description=(
            "Changes an endpoint; omitted fields stay. request is a JSON Merge Patch "
            "(headers by name, null removes); baseline replaces, null: on demand. ******** "
            "keeps a stored secret, dropped if the URL changes origin. Replans at once."
        ),
        input_model=UpdateEndpointInput,
        output_model=EndpointOut,
        handler=update_endpoint,
        scopes=_WRITE,
        method="PATCH",
        path="/endpoints/{endpoint_id}",
        mutates=True,
        idempotent=True,
        examples=(
            Example(
                {
                    "endpoint_id": _ENDPOINT,
                    "baseline": {"interval_seconds": 600},
                    "max_interval_seconds": 3600,
                    "reason": "less load on the target",
                }
            ),
        ),
    ),
    Action(
        name="delete_endpoint",
        summary="Delete an endpoint (soft)",
        description=(
            "Stops scheduling the endpoint for good; its runs and audit history are kept. "
            "Deleted endpoints are listed only with include_archived."
        ),
        input_model=EndpointChangeInput,
        output_model=EndpointOut,
        handler=delete_endpoint,
        scopes=_WRITE,
        method="DELETE",
        path="/endpoints/{endpoint_id}",
        mutates=True,
        idempotent=False,
        destructive=True,
        examples=(Example({"endpoint_id": _ENDPOINT, "reason": "obsolete"}),),
    ),
    Action(
        name="test_endpoint",
        summary="Send the endpoint's request once, now",
        description=(
            "Performs the endpoint's request immediately (with its retries and success rule) "
            "and returns the result. Nothing is scheduled or recorded as a run; the schedule "
            "is untouched. Use it to check a new endpoint or a fix."
        ),
        input_model=EndpointChangeInput,
        output_model=TestResultOut,
        handler=test_endpoint,
        scopes=frozenset({Scope.SCHEDULE_CONTROL}),
        method="POST",
        path="/endpoints/{endpoint_id}/test",
        mutates=False,
        idempotent=False,
        examples=(Example({"endpoint_id": _ENDPOINT, "reason": "check the fix"}),),
    ),
)
