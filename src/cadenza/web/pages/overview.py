"""The overview: every job with its health, what needs attention first, hints and
pauses in force, the planner's recent changes, workers and the latest runs.

Read through the catalogue: ``list_jobs`` (one keyset page), ``list_endpoints`` per
job on it (its first page), ``list_planner_sessions`` and ``list_proposals`` for the
planner, ``list_runs`` for the latest runs and, when this build has it,
``list_workers``. An endpoint needs attention when its last run failed (most
consecutive failures first) or when it is late: due more than ``LATE_AFTER`` ago
and not running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cadenza.actions.endpoint_models import EndpointOut
from cadenza.domain import errors, limits
from cadenza.web.controls import control_view
from cadenza.web.core import Dashboard, Viewer

LATE_AFTER = timedelta(seconds=60)
JOBS_PER_PAGE = 25
ATTENTION_ROWS = 20
PLANNER_ROWS = 8
PLANNER_SCAN = 50
LATEST_RUNS = 12
_PLANNER_CHANGES = frozenset({"changed", "proposed"})


@dataclass(slots=True)
class JobHealth:
    """One job of the page and what its endpoints' states add up to."""

    job: Any
    endpoints: int = 0
    failing: int = 0
    late: int = 0
    paused: int = 0
    hinted: int = 0
    more: bool = False

    @property
    def healthy(self) -> int:
        return self.endpoints - self.failing - self.late


@dataclass(slots=True)
class Attention:
    endpoint: Any
    job: Any
    failing: bool
    late_by: float | None


@dataclass(slots=True)
class Overview:
    jobs: list[JobHealth] = field(default_factory=list)
    attention: list[Attention] = field(default_factory=list)
    steered: list[tuple[Any, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """"job / endpoint" by endpoint id, for the runs and planner lists."""
    next_cursor: str | None = None


def is_failing(endpoint: EndpointOut) -> bool:
    status = endpoint.state.last_status
    return endpoint.state.failure_count > 0 or (status is not None and not status.ok)


def late_by(endpoint: EndpointOut, now: datetime) -> float | None:
    """Seconds past due, when more than ``LATE_AFTER`` and the endpoint is not running."""
    due = endpoint.state.next_run_at
    if due is None or endpoint.state.running or now - due <= LATE_AFTER:
        return None
    return (now - due).total_seconds()


def _tally(health: JobHealth, endpoint: EndpointOut, overview: Overview, now: datetime) -> None:
    health.endpoints += 1
    overview.names[endpoint.id] = f"{health.job.name} / {endpoint.name}"
    failing, late = is_failing(endpoint), late_by(endpoint, now)
    health.failing += failing
    health.late += late is not None and not failing
    hints = endpoint.hints
    health.paused += hints.pause is not None
    health.hinted += hints.interval is not None or bool(hints.one_shots)
    if failing or late is not None:
        overview.attention.append(Attention(endpoint, health.job, failing, late))
    if hints.pause is not None or hints.interval is not None or bool(hints.one_shots):
        overview.steered.append((endpoint, health.job))


async def load_overview(dashboard: Dashboard, viewer: Viewer, cursor: str | None) -> Overview:
    now = viewer.ctx.now()
    page = await dashboard.call(viewer, "list_jobs", {"cursor": cursor, "limit": JOBS_PER_PAGE})
    overview = Overview(next_cursor=page.next_cursor)
    for job in page.items:
        health = JobHealth(job)
        overview.jobs.append(health)
        if job.status == "archived":
            continue
        endpoints = await dashboard.call(
            viewer, "list_endpoints", {"job_id": job.id, "limit": limits.MAX_PAGE_SIZE}
        )
        health.more = endpoints.next_cursor is not None
        for endpoint in endpoints.items:
            _tally(health, endpoint, overview, now)
    overview.attention.sort(
        key=lambda a: (not a.failing, -a.endpoint.state.failure_count, -(a.late_by or 0))
    )
    return overview


async def load_planner(dashboard: Dashboard, viewer: Viewer) -> dict[str, Any]:
    sessions = await dashboard.call(viewer, "list_planner_sessions", {"limit": PLANNER_SCAN})
    pending = await dashboard.call(
        viewer, "list_proposals", {"status": "pending", "limit": PLANNER_SCAN}
    )
    changes = [s for s in sessions.items if s.outcome in _PLANNER_CHANGES][:PLANNER_ROWS]
    return {"planner_changes": changes, "pending": pending.items}


async def overview_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    cursor = request.query_params.get("cursor") or None
    overview = await load_overview(dashboard, viewer, cursor)
    planner = await _planner_or_nothing(dashboard, viewer)
    runs = await dashboard.call(viewer, "list_runs", {"limit": LATEST_RUNS})
    workers = await dashboard.call_if_present(viewer, "list_workers", {})
    data = {
        "names": overview.names,
        "overview": overview,
        "attention": overview.attention[:ATTENTION_ROWS],
        "latest_runs": runs.items,
        "workers": None if workers is None else listed_rows(workers),
        "cursor": cursor,
        "live_url": "/live",
        **planner,
        "create_job": control_view("create_job", next_url="/"),
    }
    part = request.query_params.get("part")
    template = "overview_live.html" if part == "live" else "overview.html"
    return dashboard.page(request, viewer, template, data)


def listed_rows(result: Any) -> list[dict[str, Any]]:
    """The rows of a list action's output (its first list field), as plain dicts: the
    workers' table shows whatever fields ``list_workers`` reports."""
    dumped = result.model_dump(mode="json")
    rows = next((value for value in dumped.values() if isinstance(value, list)), [])
    return [row if isinstance(row, dict) else {"value": row} for row in rows]


async def _planner_or_nothing(dashboard: Dashboard, viewer: Viewer) -> dict[str, Any]:
    """The planner's parts, or none when this server runs without a planner."""
    try:
        return {**await load_planner(dashboard, viewer), "planner_off": False}
    except errors.Conflict:
        return {"planner_changes": [], "pending": [], "planner_off": True}
