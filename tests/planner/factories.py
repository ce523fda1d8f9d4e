"""Builders for planner tests: a job with named endpoints and runs with responses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cadenza.domain.model import (
    Endpoint,
    Guardrails,
    Job,
    Method,
    PlanSource,
    Request,
    ResponseCapture,
    Run,
    RunStatus,
)
from cadenza.domain.planning import EndpointPlanner, Trigger
from cadenza.domain.schedule import IntervalSchedule
from cadenza.planner.port import Intent, Observation, Verdict

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TENANT = "usr_tenant"


def job(**changes: Any) -> Job:
    base = Job(id="job_1", tenant_id=TENANT, name="flash-sale", created_at=T0, updated_at=T0)
    return replace(base, **changes)


def endpoint(name: str = "health", *, every: float = 60, **changes: Any) -> Endpoint:
    base = Endpoint(
        id=f"end_{name}",
        job_id="job_1",
        tenant_id=TENANT,
        name=name,
        request=Request(Method.GET, f"https://shop.example/{name}"),
        baseline=IntervalSchedule(timedelta(seconds=every)),
        created_at=T0,
        updated_at=T0,
    )
    return replace(base, **changes)


def guarded(
    name: str = "health", low: float | None = None, high: float | None = None, **changes: Any
) -> Endpoint:
    rails = Guardrails(
        min_interval=None if low is None else timedelta(seconds=low),
        max_interval=None if high is None else timedelta(seconds=high),
    )
    return endpoint(name, guardrails=rails, **changes)


def run(
    ep: Endpoint,
    at: datetime,
    *,
    status: RunStatus = RunStatus.SUCCESS,
    http_status: int | None = 200,
    body: Any = None,
    duration: float = 0.1,
    headers: tuple[tuple[str, str], ...] = (),
    seq: int = 0,
) -> Run:
    response = None
    if body is not None or headers:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = ResponseCapture(raw, "application/json", len(raw), False, headers)
    return Run(
        id=f"run_{ep.name}_{at.timestamp():.0f}_{seq}",
        endpoint_id=ep.id,
        job_id=ep.job_id,
        tenant_id=ep.tenant_id,
        scheduled_for=at,
        started_at=at,
        finished_at=at + timedelta(seconds=duration),
        status=status,
        source=PlanSource.BASELINE_INTERVAL,
        http_status=http_status,
        response=response,
    )


def history(
    ep: Endpoint, bodies: list[Any], *, every: float = 60, status: RunStatus = RunStatus.SUCCESS
) -> tuple[Run, ...]:
    """Runs with ``bodies`` oldest first, returned newest first as observations want."""
    runs = [
        run(ep, T0 + timedelta(seconds=every * i), body=b, status=status)
        for i, b in enumerate(bodies)
    ]
    return tuple(reversed(runs))


def observe(
    ep: Endpoint,
    runs: tuple[Run, ...] = (),
    *,
    config: EndpointPlanner | None = None,
    siblings: tuple[Endpoint, ...] = (),
    sibling_runs: dict[str, tuple[Run, ...]] | None = None,
    now: datetime | None = None,
    fired: dict[str, datetime] | None = None,
) -> Observation:
    return Observation(
        now=now or (runs[0].finished_at if runs else T0),
        endpoint=ep,
        job=job(),
        config=config or EndpointPlanner(TENANT, ep.id),
        trigger=Trigger.NEW_RUNS,
        runs=runs,
        siblings=siblings,
        sibling_runs=sibling_runs or {},
        fired=fired or {},
    )


class CollectingSink:
    """Accepts every intent and remembers it."""

    def __init__(self) -> None:
        self.intents: list[Intent] = []

    async def submit(self, intent: Intent) -> Verdict:
        self.intents.append(intent)
        return Verdict("applied", "ok")
