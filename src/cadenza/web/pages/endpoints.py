"""The endpoint page: why it runs when it does, what it did, and every control.

Its parts, each read through the catalogue and each refreshable on its own
(``?part=live`` or ``?part=planner``) when a run or a change arrives:

* live: the governor's explanation of the next run rule by rule and the next
  ``PREVIEW`` runs (``explain_schedule``); hints in force and the runs in flight
  of an ``overlap=allow`` endpoint, full or not (``get_endpoint``), each
  queued one-shot with its cancel button (``cancel_one_shot``); the
  swimlane of recent runs and changes with cadence and duration over time
  (``list_runs``, ``list_audit_events``); health over the last day
  (``summarize_endpoint_health``); the latest runs.
* planner: pending proposals with approve and reject, and recent analyses
  (``list_proposals``, ``list_planner_sessions``).

The controls (hints, one-shot, run now when the catalogue has it, pause, resume,
clear hints, reset failures, edit, archive, the planner's switch and settings) are
outside the refreshed parts, so a form being filled in is never replaced. The edit
and planner settings forms, the largest, are fetched when opened.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cadenza.domain import errors
from cadenza.web.controls import control_view
from cadenza.web.core import Dashboard, Viewer
from cadenza.web.timeline import CHANGE_LABELS, series, swimlane

PREVIEW = 10
TIMELINE_RUNS = 150
TIMELINE_CHANGES = 100
LATEST_RUNS = 15
HEALTH_WINDOW_SECONDS = 86_400
PLANNER_ROWS = 10
_PARTS = {"live": "endpoint_live.html", "planner": "endpoint_planner.html"}


async def load_live(dashboard: Dashboard, viewer: Viewer, endpoint: Any) -> dict[str, Any]:
    ref = {"endpoint_id": endpoint.id}
    explained = await dashboard.call(viewer, "explain_schedule", {**ref, "preview": PREVIEW})
    runs = await dashboard.call(viewer, "list_runs", {**ref, "limit": TIMELINE_RUNS})
    changes = await dashboard.call(
        viewer, "list_audit_events", {"target_id": endpoint.id, "limit": TIMELINE_CHANGES}
    )
    health = await dashboard.call(
        viewer, "summarize_endpoint_health", {**ref, "window_seconds": HEALTH_WINDOW_SECONDS}
    )
    upcoming = [p.next_run_at for p in explained.preview if p.next_run_at is not None]
    now = viewer.ctx.now()
    here = f"/endpoints/{endpoint.id}"
    return {
        "explained": explained,
        "one_shots": [
            (shot, control_view("cancel_one_shot", {**ref, "one_shot_id": shot.id}, next_url=here))
            for shot in endpoint.hints.one_shots
        ],
        "health": health,
        "latest_runs": runs.items[:LATEST_RUNS],
        "swimlane": swimlane(runs.items, changes.items, upcoming, now),
        "chart_data": series(runs.items),
        "changes": [c for c in changes.items if c.action in CHANGE_LABELS][:LATEST_RUNS],
        "change_labels": CHANGE_LABELS,
    }


async def load_planner(dashboard: Dashboard, viewer: Viewer, endpoint: Any) -> dict[str, Any]:
    ref = {"endpoint_id": endpoint.id}
    try:
        pending = await dashboard.call(
            viewer, "list_proposals", {**ref, "status": "pending", "limit": PLANNER_ROWS}
        )
        sessions = await dashboard.call(
            viewer, "list_planner_sessions", {**ref, "limit": PLANNER_ROWS}
        )
    except errors.Conflict:
        return {"planner_off": True, "proposals": [], "sessions": []}
    here = f"/endpoints/{endpoint.id}"
    proposals = [
        (
            p,
            control_view("approve", {"proposal_id": p.id}, next_url=here),
            control_view("reject", {"proposal_id": p.id}, next_url=here),
        )
        for p in pending.items
    ]
    return {"planner_off": False, "proposals": proposals, "sessions": sessions.items}


def _controls(endpoint: Any) -> dict[str, Any]:
    """The controls rendered with the page (the edit and planner settings forms are
    fetched when opened)."""
    ids = {"endpoint_id": endpoint.id}
    here = f"/endpoints/{endpoint.id}"
    names = (
        "interval_hint",
        "one_shot",
        "run_now",
        "pause",
        "resume",
        "clear_hints",
        "reset_failures",
        "archive_endpoint",
        "planner_on",
        "planner_off",
    )
    return {name: control_view(name, ids, next_url=here) for name in names}


async def endpoint_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    endpoint = await dashboard.call(
        viewer, "get_endpoint", {"endpoint_id": request.path_params["endpoint_id"]}
    )
    part = request.query_params.get("part")
    data: dict[str, Any] = {"endpoint": endpoint, "live_url": f"/live?endpoint_id={endpoint.id}"}
    if part in (None, "live"):
        data.update(await load_live(dashboard, viewer, endpoint))
    if part in (None, "planner"):
        data.update(await load_planner(dashboard, viewer, endpoint))
    if part in _PARTS:
        return dashboard.page(request, viewer, _PARTS[part], data)
    data["job"] = await dashboard.call(viewer, "get_job", {"job_id": endpoint.job_id})
    data["controls"] = _controls(endpoint)
    return dashboard.page(request, viewer, "endpoint.html", data)
