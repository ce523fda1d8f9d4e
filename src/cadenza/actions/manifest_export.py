"""``export_manifest``: the manifest of what exists, which ``apply_manifest`` accepts.

Jobs and endpoints come out sorted by name, so exporting the same state always gives
the same manifest. Secret header values never leave the server: each is written as a
``${NAME}`` reference (``reference_name``) that ``cadenza apply`` fills from its
environment. An endpoint paused until resumed is written ``start_paused``; planner
settings other than the defaults are written in full. The tenant's channels and its
alert rules come along (``cadenza.actions.manifest_alerts``): every channel, the
rules of the jobs exported, and the tenant-wide rules when every job is.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import Field

from cadenza.actions.base import Context
from cadenza.actions.endpoint_models import baseline_spec, request_spec
from cadenza.actions.manifest_alerts import export_alerts
from cadenza.actions.manifest_models import (
    MAX_MANIFEST_JOBS,
    AlertSpec,
    EndpointSpec,
    JobSpec,
    Manifest,
)
from cadenza.actions.manifest_plan import live_endpoints, live_jobs
from cadenza.actions.planner_models import PlannerSettingsIn
from cadenza.actions.wire import Input, seconds
from cadenza.domain import errors, limits
from cadenza.domain.model import Endpoint, Job
from cadenza.domain.planning import EndpointPlanner


class ExportManifestInput(Input):
    jobs: list[Annotated[str, Field(min_length=1, max_length=limits.MAX_NAME_LENGTH)]] = Field(
        default_factory=list,
        max_length=MAX_MANIFEST_JOBS,
        description="Names or ids of the jobs to export; empty: every live job.",
    )


async def export_manifest(ctx: Context, data: ExportManifestInput) -> Manifest:
    now = ctx.now()
    async with ctx.store.transaction(readonly=True) as tx:
        selected = _select(await live_jobs(tx, ctx.tenant_id, now), data.jobs)
        found = [(job, await live_endpoints(tx, ctx.tenant_id, job)) for job in selected]
    found.sort(key=lambda pair: (pair[0].name, pair[0].id))
    alerts = await export_alerts(ctx, found)
    return Manifest(
        jobs=[
            await _job_spec(ctx, job, endpoints, now, alerts.by_job.get(job.id, []))
            for job, endpoints in found
        ],
        channels=alerts.channels,
        alerts=alerts.tenant_rules if not data.jobs else [],
    )


def _select(jobs: list[Job], wanted: list[str]) -> list[Job]:
    """The jobs named (by name or id) in ``wanted``, every live job when it is empty.
    Two jobs may share a name: both are exported, and applying that manifest says so."""
    if not wanted:
        return jobs
    selected: list[Job] = []
    for key in wanted:
        matching = [job for job in jobs if key in (job.name, job.id)]
        if not matching:
            raise errors.JobNotFound(key)
        selected += [job for job in matching if job not in selected]
    return selected


async def _job_spec(
    ctx: Context, job: Job, endpoints: list[Endpoint], now: datetime, alerts: list[AlertSpec]
) -> JobSpec:
    return JobSpec(
        name=job.name,
        description=job.description,
        tags=list(job.tags),
        planner_enabled=job.planner_enabled,
        endpoints=[
            await _endpoint_spec(ctx, job, endpoint, now)
            for endpoint in sorted(endpoints, key=lambda e: (e.name, e.id))
        ],
        alerts=alerts,
    )


async def _endpoint_spec(ctx: Context, job: Job, endpoint: Endpoint, now: datetime) -> EndpointSpec:
    request = request_spec(endpoint.request)
    for header in request.headers:
        if header.secret:
            header.value = "${" + reference_name(job.name, endpoint.name, header.name) + "}"
    planner = None
    if ctx.services.planner is not None:
        config = await ctx.services.planner.get_planner(ctx.tenant_id, endpoint.id)
        if config != EndpointPlanner(ctx.tenant_id, endpoint.id):
            planner = PlannerSettingsIn.of(config)
    pause = endpoint.pause
    return EndpointSpec(
        name=endpoint.name,
        description=endpoint.description,
        tier=endpoint.tier,
        request=request,
        baseline=baseline_spec(endpoint.baseline),
        min_interval_seconds=seconds(endpoint.guardrails.min_interval),
        max_interval_seconds=seconds(endpoint.guardrails.max_interval),
        catch_up=endpoint.catch_up,
        delivery=endpoint.delivery,
        overlap=endpoint.overlap,
        max_in_flight=endpoint.max_in_flight if endpoint.max_in_flight > 1 else None,
        jitter_seconds=endpoint.jitter.total_seconds(),
        planner_enabled=endpoint.planner_enabled,
        start_paused=pause is not None and pause.until is None and pause.active(now),
        planner=planner,
    )


def reference_name(job: str, endpoint: str, header: str) -> str:
    """The environment variable an export names for a secret header's value:
    ``STOREFRONT_HEALTH_AUTHORIZATION`` for header Authorization of endpoint health
    of job storefront."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{job}_{endpoint}_{header}").strip("_").upper()
    return name if name[:1].isalpha() else f"SECRET_{name}"
