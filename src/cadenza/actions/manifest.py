"""Jobs as code: ``apply_manifest``, ``export_manifest`` and the manifest's JSON Schema.

``apply_manifest`` makes the caller's tenant match a manifest (``manifest_models``),
matching jobs and endpoints by name. It is all-or-nothing: the manifest is checked
whole first (every problem reported with its path in the manifest, nothing
written), then every job and endpoint change is made in one transaction, each with
its audit event (action ``apply_manifest``). Planner settings live in the planner's
own store, so they are written after that transaction commits; they were checked
with everything else, so only a failing database can leave them behind, and the
next apply finishes them. A manifest that already matches changes nothing and
writes no audit event. ``dry_run`` reports the changes without making them;
``prune`` also archives live jobs the manifest does not name and deletes (softly)
endpoints of named jobs it does not name. An endpoint's planner settings are set
where its manifest has a ``planner`` section, and left as they are where not.

It is also the bulk path: ten thousand endpoints are one request, one transaction
and one rate-limit token, not ten thousand of each.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from cadenza.actions.base import Action, Context, Example, audit_event
from cadenza.actions.manifest_alerts import (
    CurrentAlerts,
    alert_problems,
    current_alerts,
    plan_alerts,
    write_alerts,
)
from cadenza.actions.manifest_export import ExportManifestInput, export_manifest
from cadenza.actions.manifest_models import (
    JobSpec,
    Manifest,
    ManifestSchema,
    manifest_schema,
)
from cadenza.actions.manifest_plan import (
    CONFIG_FIELDS,
    ROOT,
    CurrentJob,
    Plan,
    Step,
    WantedJob,
    current_state,
    json_changes,
    make_plan,
    wanted_state,
)
from cadenza.actions.meta import NoInput
from cadenza.actions.planner_models import PlannerSettingsIn
from cadenza.actions.scheduling import replan_job_endpoints
from cadenza.actions.wire import Input, Output, Reason
from cadenza.domain import errors, lifecycle
from cadenza.domain.identity import Scope, grants
from cadenza.domain.model import AuditEvent, Endpoint, Job, Pause
from cadenza.domain.planning import EndpointPlanner
from cadenza.ids import new_id
from cadenza.ports import Tx

AUDIT_ACTION = "apply_manifest"


class ApplyManifestInput(Input):
    manifest: Manifest
    dry_run: bool = Field(False, description="Report the changes without making them.")
    prune: bool = Field(False, description="Also archive what the manifest does not name.")
    reason: Reason = ""


class FieldChangeOut(Output):
    field: str = Field(description="Dotted path of the field, e.g. request.timeout_seconds.")
    before: Any
    after: Any


class ChangeOut(Output):
    op: Literal["create", "update", "archive"]
    kind: Literal["job", "endpoint", "planner", "channel", "alert"] = Field(
        description="planner: an endpoint's planner settings."
    )
    job: str = Field(description="The job's name.")
    endpoint: str | None = Field(description="The endpoint's, channel's or alert's name.")
    path: str | None = Field(description="Where it is in the manifest; null for pruned items.")
    id: str | None = Field(description="The id changed or created; null in a dry run's creates.")
    fields: list[FieldChangeOut] = Field(description="For an update: what changes.")


class ApplyManifestOut(Output):
    """What changed (or, in a dry run, would change); the counts include planner
    settings, which are created with their endpoint or updated on their own."""

    dry_run: bool
    created: int
    updated: int
    archived: int
    unchanged: int = Field(description="Jobs and endpoints already as the manifest says.")
    changes: list[ChangeOut]


async def apply_manifest(ctx: Context, data: ApplyManifestInput) -> ApplyManifestOut:
    now = ctx.now()
    wanted = _wanted(data.manifest, ctx.tenant_id, now)
    if ctx.services.planner is None and any(e.planner for j in wanted for e in j.endpoints):
        raise errors.Conflict("The planner is not configured on this server.")
    names = {job.spec.name for job in wanted}
    alerts = await current_alerts(ctx, data.manifest, prune=data.prune)
    if data.dry_run:
        async with ctx.store.transaction(readonly=True) as tx:
            current = await current_state(tx, ctx.tenant_id, now, names)
        plan = _checked_plan(ctx, wanted, current, data.prune)
        planners = await _plan_planners(ctx, wanted, _ids(wanted, current, plan))
        alerting = _plan_alerts(ctx, data, alerts, wanted, current, plan)
        return _out(plan, [*planners, *alerting], dry_run=True)
    async with ctx.store.transaction() as tx:
        current = await current_state(tx, ctx.tenant_id, now, names)
        plan = _checked_plan(ctx, wanted, current, data.prune)
        await _write(ctx, tx, plan, current, now, data.reason)
    planners = await _plan_planners(ctx, wanted, _ids(wanted, current, plan))
    await _write_planners(ctx, planners, data.reason)
    alerting = _plan_alerts(ctx, data, alerts, wanted, current, plan)
    await write_alerts(ctx, alerting, data.reason)
    if plan.steps:
        ctx.services.waker.wake()
    return _out(plan, [*planners, *alerting], dry_run=False)


def _wanted(manifest: Manifest, tenant_id: str, now: datetime) -> list[WantedJob]:
    """``wanted_state`` with the problems of the manifest's alerts reported with it."""
    problems = alert_problems(manifest, tenant_id, now)
    try:
        wanted = wanted_state(manifest, tenant_id, now)
    except errors.InvalidInput as exc:
        raise errors.InvalidInput([*exc.problems, *problems]) from None
    if problems:
        raise errors.InvalidInput(problems)
    return wanted


def _plan_alerts(
    ctx: Context,
    data: ApplyManifestInput,
    alerts: CurrentAlerts,
    wanted: list[WantedJob],
    current: dict[str, CurrentJob],
    plan: Plan,
) -> list[Step]:
    job_ids: dict[str, str | None] = {name: found.job.id for name, found in current.items()}
    job_ids |= {s.job: s.id for s in plan.steps if s.kind == "job" and s.op == "create"}
    endpoint_ids = _ids(wanted, current, plan)
    return plan_alerts(ctx, data.manifest, alerts, job_ids, endpoint_ids, prune=data.prune)


def _checked_plan(
    ctx: Context, wanted: list[WantedJob], current: dict[str, CurrentJob], prune: bool
) -> Plan:
    plan = make_plan(wanted, current, prune=prune)
    pauses = [s for s in plan.steps if s.op == "create" and getattr(s.target, "spec", None)]
    if any(getattr(s.target.spec, "start_paused", False) for s in pauses) and not grants(
        ctx.scopes, frozenset({Scope.SCHEDULE_CONTROL})
    ):
        raise errors.PermissionDenied("start_paused needs the scope schedule:control.")
    return plan


async def _write(
    ctx: Context, tx: Tx, plan: Plan, current: dict[str, CurrentJob], now: datetime, reason: str
) -> None:
    """Every step in one transaction; new endpoints and the audit events are written
    in batches (one statement each, whatever their number)."""
    jobs = {name: found.job for name, found in current.items()}
    # Ids first, one after the other: ids made in one millisecond without others in
    # between sort in creation order, so the endpoints list in the manifest's order.
    for step in plan.steps:
        if step.op == "create":
            step.id = new_id("job" if step.kind == "job" else "ep", now)
    created: list[Endpoint] = []
    events: list[AuditEvent] = []
    for step in plan.steps:
        if step.kind == "job":
            jobs[step.job] = await _write_job(ctx, tx, step, now)
        elif step.op == "create":
            created.append(_new_endpoint(ctx, step, jobs[step.job], now))
        else:
            await _change_endpoint(ctx, tx, step, jobs[step.job], now)
        events.append(_event(ctx, step, now, reason))
    await tx.insert_endpoints(created)
    await tx.insert_audits(events)


async def _write_job(ctx: Context, tx: Tx, step: Step, now: datetime) -> Job:
    if step.op == "create":
        spec: JobSpec = step.target.spec
        assert step.id is not None
        job = Job(
            id=step.id,
            tenant_id=ctx.tenant_id,
            name=spec.name,
            created_at=now,
            updated_at=now,
            description=spec.description,
            tags=tuple(spec.tags),
            planner_enabled=spec.planner_enabled,
        )
        await tx.insert_job(job)
        return job
    found = await tx.get_job(ctx.tenant_id, step.target.id, for_update=True)
    if step.op == "archive":
        job = replace(found, archived_at=now, updated_at=now)
        await tx.update_job(job)
        await replan_job_endpoints(ctx, tx, job, now)
        return job
    fields = {f: after for f, _, after in step.changes}
    if "tags" in fields:
        fields["tags"] = tuple(fields["tags"])
    job = replace(found, **fields, updated_at=now)
    await tx.update_job(job)
    return job


async def _change_endpoint(ctx: Context, tx: Tx, step: Step, job: Job, now: datetime) -> None:
    found = await tx.get_endpoint(ctx.tenant_id, step.target.id, for_update=True)
    if step.op == "archive":
        changed = replace(found, archived_at=now, updated_at=now)
    else:
        wanted: Endpoint = step.target
        config = {f: getattr(wanted, f) for f in CONFIG_FIELDS}
        changed = replace(found, **config, updated_at=now)
    await tx.update_endpoint(lifecycle.replan(changed, job, now))


def _new_endpoint(ctx: Context, step: Step, job: Job, now: datetime) -> Endpoint:
    endpoint = replace(step.target.template, id=step.id, job_id=job.id)
    if step.target.spec.start_paused:
        pause = Pause(until=None, reason="start_paused in the manifest", actor=ctx.actor)
        return lifecycle.paused(endpoint, job, pause, now)
    return lifecycle.replan(endpoint, job, now)


def _event(ctx: Context, step: Step, now: datetime, reason: str) -> AuditEvent:
    assert step.id is not None
    changes: dict[str, Any] = {"op": step.op, "name": step.endpoint or step.job}
    if step.changes:
        changes["fields"] = [f for f, _, _ in step.changes]
    kind = "job" if step.kind == "job" else "endpoint"
    return audit_event(ctx, now, AUDIT_ACTION, (kind, step.id), reason, changes)


def _ids(
    wanted: list[WantedJob], current: dict[str, CurrentJob], plan: Plan
) -> dict[tuple[str, str], tuple[str | None, bool]]:
    """Each wanted endpoint's id (``None`` for a dry run's create) and whether it is new."""
    created = {(s.job, s.endpoint): s.id for s in plan.steps if s.kind == "endpoint"}
    ids: dict[tuple[str, str], tuple[str | None, bool]] = {}
    for job in wanted:
        existing = current[job.spec.name].endpoints if job.spec.name in current else {}
        for item in job.endpoints:
            key = (job.spec.name, item.spec.name)
            found = existing.get(item.spec.name)
            ids[key] = (found.id, False) if found else (created.get(key), True)
    return ids


async def _plan_planners(
    ctx: Context, wanted: list[WantedJob], ids: dict[tuple[str, str], tuple[str | None, bool]]
) -> list[Step]:
    """The endpoints whose planner settings differ from their manifest's. Endpoints
    without a ``planner`` section keep theirs (``planner: {}`` sets the defaults), so
    settings made elsewhere survive an apply, and a bulk apply reads no settings."""
    if ctx.services.planner is None:
        return []
    steps: list[Step] = []
    for job in wanted:
        for item in job.endpoints:
            if item.planner is None:
                continue
            endpoint_id, new = ids[(job.spec.name, item.spec.name)]
            target = endpoint_id or ""
            want = replace(item.planner, endpoint_id=target)
            have = (
                EndpointPlanner(ctx.tenant_id, target)
                if new
                else await ctx.services.planner.get_planner(ctx.tenant_id, target)
            )
            if want != have:
                changes = json_changes(_planner_wire(have), _planner_wire(want), "planner.")
                op: Literal["create", "update"] = "create" if new else "update"
                step = Step(op, "planner", job.spec.name, item.spec.name, item.path, want, changes)
                step.id = endpoint_id
                steps.append(step)
    return steps


def _planner_wire(config: EndpointPlanner) -> dict[str, Any]:
    return PlannerSettingsIn.of(config).model_dump(mode="json")


async def _write_planners(ctx: Context, steps: list[Step], reason: str) -> None:
    if not steps or ctx.services.planner is None:
        return
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        await tx.insert_audits([_event(ctx, step, now, reason) for step in steps])
    for step in steps:
        await ctx.services.planner.put_planner(step.target)


def _out(plan: Plan, planners: list[Step], *, dry_run: bool) -> ApplyManifestOut:
    steps = [*plan.steps, *planners]
    ops = [s.op for s in steps]
    # One validation of plain dicts: pydantic-core does that much faster than
    # building ten thousand models one by one in Python.
    return ApplyManifestOut.model_validate(
        {
            "dry_run": dry_run,
            "created": ops.count("create"),
            "updated": ops.count("update"),
            "archived": ops.count("archive"),
            "unchanged": plan.unchanged,
            "changes": [_change(s) for s in steps],
        }
    )


def _change(step: Step) -> dict[str, Any]:
    return {
        "op": step.op,
        "kind": step.kind,
        "job": step.job,
        "endpoint": step.endpoint,
        "path": step.path[len(ROOT) + 1 :] if step.path else None,
        "id": step.id,
        "fields": [{"field": f, "before": b, "after": a} for f, b, a in step.changes],
    }


# -- the schema ----------------------------------------------------------------------


@functools.cache
def _schema() -> ManifestSchema:
    return ManifestSchema(manifest_schema())


async def get_manifest_schema(ctx: Context, data: NoInput) -> ManifestSchema:
    return _schema()


_SHOP = {
    "version": 1,
    "jobs": [
        {
            "name": "shop",
            "endpoints": [
                {
                    "name": "health",
                    "request": {"url": "https://shop.example.com/health"},
                    "baseline": {"interval_seconds": 300},
                    "min_interval_seconds": 30,
                }
            ],
        }
    ],
}

ACTIONS = (
    Action(
        name="apply_manifest",
        summary="Make jobs and endpoints match a manifest",
        description=(
            "Creates or updates jobs, their endpoints and planner rules to match a "
            "manifest (matched by name), all or nothing: an invalid field refuses it "
            "whole. Applying it again changes nothing. One call sets up a whole use case "
            "or thousands of endpoints. Format: get_manifest_schema."
        ),
        input_model=ApplyManifestInput,
        output_model=ApplyManifestOut,
        handler=apply_manifest,
        scopes=frozenset({Scope.JOBS_WRITE}),
        method="POST",
        path="/manifest",
        mutates=True,
        idempotent=True,
        tags=("manifest",),
        examples=(Example({"manifest": _SHOP, "dry_run": True}, "What applying would change."),),
    ),
    Action(
        name="export_manifest",
        summary="The manifest of existing jobs",
        description=(
            "Returns the live jobs (all, or those named by name or id) with their "
            "endpoints and planner rules as a manifest that apply_manifest accepts, jobs "
            "and endpoints sorted by name. Secret header values are not revealed: each "
            "is a ${NAME} reference."
        ),
        input_model=ExportManifestInput,
        output_model=Manifest,
        handler=export_manifest,
        scopes=frozenset({Scope.JOBS_READ}),
        method="GET",
        path="/manifest",
        mutates=False,
        idempotent=True,
        tags=("manifest",),
        examples=(Example({}, "Every live job, as a manifest."),),
    ),
    Action(
        name="get_manifest_schema",
        summary="The JSON Schema of a manifest",
        description=(
            "The JSON Schema (2020-12) of the manifest format that apply_manifest takes "
            "and export_manifest returns; editors can validate YAML manifests with it."
        ),
        input_model=NoInput,
        output_model=ManifestSchema,
        handler=get_manifest_schema,
        scopes=frozenset(),
        method="GET",
        path="/schemas/manifest.json",
        mutates=False,
        idempotent=True,
        tags=("manifest",),
        examples=(Example({}),),
    ),
)
