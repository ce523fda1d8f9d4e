"""Small builders for domain entities, shared by the unit tests of the domain.

Every builder takes keyword overrides so a test states only what matters to it.
Time never comes from the wall clock: ``T0`` is the fixed "now" of most tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cadenza.domain.model import (
    Endpoint,
    IntervalHint,
    Job,
    Method,
    OneShot,
    Pause,
    Plan,
    PlanSource,
    Request,
    Run,
    RunStatus,
)
from cadenza.domain.schedule import Baseline, CronSchedule, IntervalSchedule

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
"""A Monday noon, UTC: the "now" of most governor tests."""


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def at(offset_minutes: float) -> datetime:
    """``T0`` shifted by a number of minutes (negative for the past)."""
    return T0 + minutes(offset_minutes)


def every(span: timedelta, start_at: datetime | None = None) -> IntervalSchedule:
    return IntervalSchedule(span, start_at)


def cron(expression: str, timezone: str = "UTC") -> CronSchedule:
    return CronSchedule(expression, timezone)


def make_job(**overrides: Any) -> Job:
    fields: dict[str, Any] = {
        "id": "job-1",
        "tenant_id": "tenant-1",
        "name": "nightly checks",
        "created_at": T0 - timedelta(days=30),
        "updated_at": T0 - timedelta(days=30),
    }
    fields.update(overrides)
    return Job(**fields)


def make_endpoint(baseline: Baseline | None = None, **overrides: Any) -> Endpoint:
    """An endpoint created a day before ``T0``, every 10 minutes unless told otherwise."""
    fields: dict[str, Any] = {
        "id": "ep-1",
        "job_id": "job-1",
        "tenant_id": "tenant-1",
        "name": "health check",
        "request": Request(Method.GET, "https://example.com/health"),
        "baseline": baseline if baseline is not None else every(minutes(10)),
        "created_at": T0 - timedelta(days=1),
        "updated_at": T0 - timedelta(days=1),
    }
    fields.update(overrides)
    return Endpoint(**fields)


def on_demand(**overrides: Any) -> Endpoint:
    """An endpoint with no baseline: it runs only when asked."""
    return replace(make_endpoint(**overrides), baseline=None)


def ran(endpoint: Endpoint, when: datetime, **overrides: Any) -> Endpoint:
    """``endpoint`` as it is after a successful run that started on its slot ``when``."""
    fields: dict[str, Any] = {"last_run_at": when, "last_scheduled_for": when}
    fields.update(overrides)
    return replace(endpoint, **fields)


def interval_hint(interval: timedelta, expires_at: datetime, reason: str = "") -> IntervalHint:
    return IntervalHint(interval, expires_at, reason)


def one_shot(
    run_at: datetime, expires_at: datetime | None = None, shot_id: str | None = None
) -> OneShot:
    """A one-shot valid for an hour after ``run_at`` unless told; its id names its time."""
    expires = expires_at if expires_at is not None else run_at + timedelta(hours=1)
    return OneShot(shot_id or f"osh-{run_at.isoformat()}", run_at, expires)


def pause(until: datetime | None, reason: str = "") -> Pause:
    return Pause(until, reason)


def make_run(
    endpoint: Endpoint,
    started_at: datetime,
    status: RunStatus = RunStatus.SUCCESS,
    scheduled_for: datetime | None = None,
    source: PlanSource = PlanSource.BASELINE_INTERVAL,
) -> Run:
    return Run(
        id=f"run-{started_at.isoformat()}",
        endpoint_id=endpoint.id,
        job_id=endpoint.job_id,
        tenant_id=endpoint.tenant_id,
        scheduled_for=scheduled_for if scheduled_for is not None else started_at,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=1),
        status=status,
        source=source,
    )


def rules(plan: Plan) -> list[str]:
    """The rule names of a plan's explanation, in order."""
    return [step.rule for step in plan.explanation]
