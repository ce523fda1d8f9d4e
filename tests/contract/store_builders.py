"""Entities for the contract suite, built from a fixed clock and fresh ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cadenza.domain.model import (
    Endpoint,
    Job,
    Method,
    PlanSource,
    Request,
    Run,
    RunStatus,
)
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import Claim, Completion, RunFilter, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "usr_tenant_a"
OTHER = "usr_tenant_b"


def secs(n: float) -> timedelta:
    return timedelta(seconds=n)


def job(tenant: str = TENANT, **kw: Any) -> Job:
    values: dict[str, Any] = {
        "id": new_id("job", T0),
        "tenant_id": tenant,
        "name": "nightly",
        "created_at": T0,
        "updated_at": T0,
    }
    return Job(**(values | kw))


def endpoint(of: Job, **kw: Any) -> Endpoint:
    values: dict[str, Any] = {
        "id": new_id("ept", T0),
        "job_id": of.id,
        "tenant_id": of.tenant_id,
        "name": "ping",
        "request": Request(Method.GET, "https://example.com/ping", timeout=secs(10)),
        "baseline": IntervalSchedule(secs(60)),
        "created_at": T0,
        "updated_at": T0,
        "next_run_at": T0,
        "next_run_source": PlanSource.BASELINE_INTERVAL,
    }
    return Endpoint(**(values | kw))


def run_for(
    claim: Claim, status: RunStatus = RunStatus.SUCCESS, at: datetime | None = None, **kw: Any
) -> Run:
    start = at or claim.scheduled_for
    values: dict[str, Any] = {
        "id": new_id("run", start),
        "endpoint_id": claim.endpoint.id,
        "job_id": claim.endpoint.job_id,
        "tenant_id": claim.endpoint.tenant_id,
        "scheduled_for": claim.scheduled_for,
        "started_at": start,
        "finished_at": start + secs(1),
        "status": status,
        "source": claim.source,
        "attempt": claim.attempt,
        "http_status": 200 if status is RunStatus.SUCCESS else 500,
    }
    return Run(**(values | kw))


def done(claim: Claim, status: RunStatus = RunStatus.SUCCESS, **kw: Any) -> Completion:
    return Completion(claim, run_for(claim, status, **kw))


LEASE_MARGIN = secs(5)
"""Leases last the request budget plus this: far beyond the instants the tests use."""


async def claim(store: Store, worker: str, now: datetime, limit: int = 100) -> list[Claim]:
    return await store.claim_due(
        worker, now, lookahead=secs(0.5), limit=limit, lease_margin=LEASE_MARGIN
    )


async def current(store: Store, ep: Endpoint) -> Endpoint:
    async with store.transaction(readonly=True) as tx:
        return await tx.get_endpoint(TENANT, ep.id)


async def runs_of(store: Store, ep: Endpoint) -> list[tuple[int, RunStatus]]:
    """The endpoint's runs as (attempt, status), in attempt order."""
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_runs(TENANT, RunFilter(endpoint_id=ep.id), cursor=None, limit=50)
    return sorted((r.attempt, r.status) for r in page.items)
