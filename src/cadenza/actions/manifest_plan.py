"""What applying a manifest would change: the wanted state, the current state, the plan.

``wanted_state`` turns a manifest into domain objects and refuses it whole, with one
problem per offending field named by its path in the manifest, before anything is
read or written. ``current_state`` reads the tenant's live jobs and the endpoints of
those the manifest names. ``make_plan`` compares the two by name and lists the steps
(create, update, archive) that make the current state the wanted one; a state that
already matches yields no step, so a second apply changes nothing.

A new section of ``JobSpec`` needs three things here: its wanted
items in ``WantedJob`` (built by ``_wanted_job``), its current items in
``CurrentJob`` (read by ``current_state``), and a ``_plan_<section>`` that compares
them by name like ``_plan_endpoints``, called from ``_plan_job``. Alert rules and
channels live in another store and are planned on their own, after the jobs and
endpoints they name are written (``cadenza.actions.manifest_alerts``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from cadenza.actions.endpoint_models import (
    SECRET_MASK,
    baseline_spec,
    request_spec,
)
from cadenza.actions.manifest_models import REFERENCE, EndpointSpec, JobSpec, Manifest
from cadenza.actions.wire import seconds
from cadenza.domain import errors, limits
from cadenza.domain.model import Endpoint, Job
from cadenza.domain.planning import EndpointPlanner
from cadenza.ports import Tx

ROOT = "manifest"
CONFIG_FIELDS = (
    "description",
    "tier",
    "request",
    "baseline",
    "guardrails",
    "catch_up",
    "delivery",
    "overlap",
    "max_in_flight",
    "jitter",
    "planner_enabled",
)
"""An endpoint's configuration: what a manifest sets (its name is its key)."""

Op = Literal["create", "update", "archive"]
Kind = Literal["job", "endpoint", "planner", "channel", "alert"]


@dataclass(slots=True)
class WantedEndpoint:
    path: str
    spec: EndpointSpec
    template: Endpoint
    """The endpoint as the manifest describes it; ids and times are filled on create."""
    planner: EndpointPlanner | None
    """The planner settings asked for (for a placeholder endpoint id); None: defaults."""


@dataclass(slots=True)
class WantedJob:
    path: str
    spec: JobSpec
    endpoints: list[WantedEndpoint]


@dataclass(slots=True)
class CurrentJob:
    job: Job
    endpoints: dict[str, Endpoint] = field(default_factory=dict)


@dataclass(slots=True)
class Step:
    """One change. ``target`` is what changes (the current object, or the wanted one
    for a create); ``changes`` lists ``(field, before, after)`` for an update."""

    op: Op
    kind: Kind
    job: str
    endpoint: str | None
    path: str | None
    target: Any
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    id: str | None = None
    """The id changed, or created (set when the create is written)."""

    def __post_init__(self) -> None:
        if self.op != "create" and self.kind != "planner":
            self.id = self.target.id


@dataclass(slots=True)
class Plan:
    steps: list[Step]
    unchanged: int


def wanted_state(manifest: Manifest, tenant_id: str, now: datetime) -> list[WantedJob]:
    """The manifest as domain objects; ``InvalidInput`` lists every problem at once."""
    problems: list[tuple[str, str]] = []
    jobs = [
        _wanted_job(f"{ROOT}.jobs.{i}", spec, tenant_id, now, problems)
        for i, spec in enumerate(manifest.jobs)
    ]
    problems += _duplicates([(j.path, j.spec.name) for j in jobs], "job")
    if problems:
        raise errors.InvalidInput(problems)
    return jobs


def _wanted_job(
    path: str, spec: JobSpec, tenant_id: str, now: datetime, problems: list[tuple[str, str]]
) -> WantedJob:
    endpoints: list[WantedEndpoint] = []
    for i, endpoint_spec in enumerate(spec.endpoints):
        wanted = _wanted_endpoint(f"{path}.endpoints.{i}", endpoint_spec, tenant_id, now, problems)
        if wanted is not None:
            endpoints.append(wanted)
    named = [(f"{path}.endpoints.{i}", e.name) for i, e in enumerate(spec.endpoints)]
    problems += _duplicates(named, "endpoint of this job")
    return WantedJob(path, spec, endpoints)


def _wanted_endpoint(
    path: str, spec: EndpointSpec, tenant_id: str, now: datetime, problems: list[tuple[str, str]]
) -> WantedEndpoint | None:
    problems += _unfilled_references(path, spec)
    try:
        template = Endpoint(
            id="",
            job_id="",
            tenant_id=tenant_id,
            name=spec.name,
            created_at=now,
            updated_at=now,
            **spec.configuration(),
        )
        planner = None if spec.planner is None else spec.planner.to_domain(tenant_id, "")
    except errors.ValidationError as exc:
        problems += located(path, exc)
        return None
    return WantedEndpoint(path, spec, template, planner)


def _unfilled_references(path: str, spec: EndpointSpec) -> Iterator[tuple[str, str]]:
    values = [("request.url", spec.request.url)]
    values += [(f"request.headers.{i}.value", h.value) for i, h in enumerate(spec.request.headers)]
    for where, value in values:
        found = REFERENCE.search(value)
        if found:
            yield (
                f"{path}.{where}",
                f"{found.group(0)} was not filled in: `cadenza apply` fills references "
                "from its environment; an API caller sends the value itself.",
            )


def located(path: str, exc: errors.ValidationError) -> list[tuple[str, str]]:
    if isinstance(exc, errors.InvalidInput):
        return [(f"{path}.{f}" if f else path, message) for f, message in exc.problems]
    return [(f"{path}.{exc.field}" if exc.field else path, exc.message)]


def _duplicates(named: list[tuple[str, str]], what: str) -> list[tuple[str, str]]:
    seen: set[str] = set()
    found = []
    for path, name in named:
        if name in seen:
            found.append((f"{path}.name", f"Another {what} in the manifest is named {name!r}."))
        seen.add(name)
    return found


async def current_state(
    tx: Tx, tenant_id: str, now: datetime, names: set[str]
) -> dict[str, CurrentJob]:
    """Every live job of the tenant by name, with the live endpoints of those named
    in ``names``. Two live jobs (or endpoints of one job) with one name are a
    ``DuplicateName`` conflict: the manifest could not say which it means."""
    current: dict[str, CurrentJob] = {}
    for job in await live_jobs(tx, tenant_id, now):
        if job.name in current:
            raise errors.DuplicateName(
                f"Two live jobs are named {job.name!r}; rename or archive one first."
            )
        current[job.name] = CurrentJob(job)
    for name in names & current.keys():
        job = current[name].job
        for endpoint in await live_endpoints(tx, tenant_id, job):
            if endpoint.name in current[name].endpoints:
                raise errors.DuplicateName(
                    f"Job {job.name!r} has two live endpoints named {endpoint.name!r}; "
                    "rename or delete one first."
                )
            current[name].endpoints[endpoint.name] = endpoint
    return current


async def live_jobs(tx: Tx, tenant_id: str, now: datetime) -> list[Job]:
    """The tenant's jobs that are not archived, newest first."""
    found: list[Job] = []
    cursor: str | None = None
    while True:
        page = await tx.list_jobs(
            tenant_id, status=None, now=now, cursor=cursor, limit=limits.MAX_PAGE_SIZE
        )
        found += [job for job in page.items if not job.archived]
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def live_endpoints(tx: Tx, tenant_id: str, job: Job) -> list[Endpoint]:
    """The job's endpoints that are not deleted, oldest first."""
    found: list[Endpoint] = []
    cursor: str | None = None
    while True:
        page = await tx.list_endpoints(
            tenant_id, job.id, include_archived=False, cursor=cursor, limit=limits.MAX_PAGE_SIZE
        )
        found += page.items
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def make_plan(wanted: list[WantedJob], current: dict[str, CurrentJob], *, prune: bool) -> Plan:
    """The steps from ``current`` to ``wanted``; ``prune`` also archives what the
    manifest does not name (live jobs, and endpoints of the jobs it names)."""
    plan = Plan([], 0)
    problems: list[tuple[str, str]] = []
    for job in wanted:
        _plan_job(plan, job, current.get(job.spec.name), prune, problems)
    if problems:
        raise errors.InvalidInput(problems)
    if prune:
        named = {j.spec.name for j in wanted}
        for name, gone in current.items():
            if name not in named:
                plan.steps.append(Step("archive", "job", name, None, None, gone.job))
    return plan


def _plan_job(
    plan: Plan,
    wanted: WantedJob,
    current: CurrentJob | None,
    prune: bool,
    problems: list[tuple[str, str]],
) -> None:
    name = wanted.spec.name
    if current is None:
        plan.steps.append(Step("create", "job", name, None, wanted.path, wanted))
    else:
        changes = json_changes(_job_wire(current.job), _job_wire_of_spec(wanted.spec))
        if changes:
            plan.steps.append(Step("update", "job", name, None, wanted.path, current.job, changes))
        else:
            plan.unchanged += 1
    _plan_endpoints(plan, wanted, current, prune, problems)


def _plan_endpoints(
    plan: Plan,
    wanted: WantedJob,
    current: CurrentJob | None,
    prune: bool,
    problems: list[tuple[str, str]],
) -> None:
    existing = current.endpoints if current else {}
    job = wanted.spec.name
    for item in wanted.endpoints:
        found = existing.get(item.spec.name)
        if found is None:
            problems += _masked_secrets(item)
            plan.steps.append(Step("create", "endpoint", job, item.spec.name, item.path, item))
            continue
        desired = replace(found, **item.spec.configuration(found.request))
        changes = endpoint_changes(found, desired)
        if changes:
            step = Step("update", "endpoint", job, item.spec.name, item.path, desired, changes)
            plan.steps.append(step)
        else:
            plan.unchanged += 1
    if prune:
        named = {e.spec.name for e in wanted.endpoints}
        for name, gone in existing.items():
            if name not in named:
                plan.steps.append(Step("archive", "endpoint", job, name, None, gone))


def _masked_secrets(item: WantedEndpoint) -> Iterator[tuple[str, str]]:
    for i, header in enumerate(item.spec.request.headers):
        if header.secret and header.value == SECRET_MASK:
            yield (
                f"{item.path}.request.headers.{i}.value",
                f"{SECRET_MASK} keeps a stored secret, and this endpoint is new: give the "
                "value (or a ${NAME} reference that cadenza apply fills in).",
            )


def endpoint_changes(before: Endpoint, after: Endpoint) -> list[tuple[str, Any, Any]]:
    """``(field, before, after)`` of each configuration field that differs, in wire
    form (secret values masked); empty when the configurations are equal."""
    if all(getattr(before, f) == getattr(after, f) for f in CONFIG_FIELDS):
        return []
    changes = json_changes(endpoint_wire(before), endpoint_wire(after))
    if before.request.headers != after.request.headers and not any(
        f.startswith("request.headers") for f, _, _ in changes
    ):
        changes.append(("request.headers", "(a secret value)", "(another secret value)"))
    return changes


def endpoint_wire(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint's configuration as the API shows it (secrets masked)."""
    baseline = baseline_spec(endpoint.baseline)
    return {
        "description": endpoint.description,
        "tier": endpoint.tier,
        "request": request_spec(endpoint.request).model_dump(mode="json", by_alias=True),
        "baseline": None if baseline is None else baseline.model_dump(mode="json"),
        "min_interval_seconds": seconds(endpoint.guardrails.min_interval),
        "max_interval_seconds": seconds(endpoint.guardrails.max_interval),
        "catch_up": endpoint.catch_up.value,
        "delivery": endpoint.delivery.value,
        "overlap": endpoint.overlap.value,
        "max_in_flight": endpoint.max_in_flight,
        "jitter_seconds": endpoint.jitter.total_seconds(),
        "planner_enabled": endpoint.planner_enabled,
    }


def _job_wire(job: Job) -> dict[str, Any]:
    fields = {"description": job.description, "tags": list(job.tags)}
    return {**fields, "planner_enabled": job.planner_enabled}


def _job_wire_of_spec(spec: JobSpec) -> dict[str, Any]:
    fields = {"description": spec.description, "tags": list(spec.tags)}
    return {**fields, "planner_enabled": spec.planner_enabled}


def json_changes(before: Any, after: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Leaf differences of two JSON values: objects compared key by key, anything
    else (lists included) whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in [*before, *(k for k in after if k not in before)]:
            found += json_changes(before.get(key), after.get(key), f"{prefix}{key}.")
        return found
    return [] if before == after else [(prefix.rstrip("."), before, after)]
