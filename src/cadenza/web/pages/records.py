"""Runs, a run, and the audit log: filtered lists paged by keyset, and one run whole.

The filter forms are generated from the list actions' input models and sent as
query strings; a page's ``next_cursor`` becomes the "Older" link. Invalid filters
are shown beside their fields, with an empty list, as the action reports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from cadenza.actions import BY_NAME
from cadenza.domain import errors
from cadenza.web.controls import problems_of
from cadenza.web.core import Dashboard, Viewer
from cadenza.web.forms import Form, build_form, payload

_RUN_FILTERS = ("endpoint_id", "job_id", "status", "since", "until", "limit")
_AUDIT_FILTERS = ("target_id", "actor_id", "since", "limit")


def _query(request: Request) -> dict[str, list[str]]:
    params = request.query_params
    return {key: params.getlist(key) for key in params if key != "part"}


async def _filtered(
    dashboard: Dashboard, viewer: Viewer, request: Request, action: str, fields: tuple[str, ...]
) -> tuple[Form, Any, dict[str, Any]]:
    """The filter form, the page (``None`` when the filters were refused) and the
    filters that made it, for the paging links."""
    model = BY_NAME[action].input_model
    submitted = _query(request)
    problems: list[tuple[str, str]] = []
    page = None
    filters: dict[str, Any] = {}
    try:
        filters = payload(model, submitted)
        page = await dashboard.call(viewer, action, filters)
    except (errors.InvalidInput, errors.ValidationError) as exc:
        problems = problems_of(exc)
    form = build_form(
        action, model, submit="Filter", only=fields, values=submitted, problems=problems
    )
    return form, page, filters


def _older(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k not in ("cursor", "part")}
    params["cursor"] = cursor
    return f"{request.url.path}?{urlencode(params)}"


async def endpoint_names(
    dashboard: Dashboard, viewer: Viewer, endpoint_ids: Iterable[str]
) -> dict[str, str]:
    """The names of the endpoints ``endpoint_ids`` (deleted or unknown ones left out)."""
    names: dict[str, str] = {}
    for endpoint_id in dict.fromkeys(endpoint_ids):
        try:
            endpoint = await dashboard.call(viewer, "get_endpoint", {"endpoint_id": endpoint_id})
        except errors.NotFound:
            continue
        names[endpoint_id] = endpoint.name
    return names


async def runs_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    form, page, filters = await _filtered(dashboard, viewer, request, "list_runs", _RUN_FILTERS)
    runs = page.items if page else []
    live = {k: filters[k] for k in ("job_id", "endpoint_id") if filters.get(k)}
    data = {
        "form": form,
        "runs": runs,
        "names": await endpoint_names(dashboard, viewer, (r.endpoint_id for r in runs)),
        "older": _older(request, page.next_cursor if page else None),
        "paged": bool(request.query_params.get("cursor")),
        "live_url": "" if request.query_params.get("cursor") else f"/live?{urlencode(live)}",
    }
    template = "runs_live.html" if request.query_params.get("part") == "live" else "runs.html"
    return dashboard.page(request, viewer, template, data)


async def run_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    run = await dashboard.call(viewer, "get_run_details", {"run_id": request.path_params["run_id"]})
    endpoint = None
    try:
        endpoint = await dashboard.call(viewer, "get_endpoint", {"endpoint_id": run.endpoint_id})
    except errors.NotFound:
        endpoint = None
    data = {"run": run, "endpoint": endpoint, "key": getattr(run, "idempotency_key", None)}
    return dashboard.page(request, viewer, "run.html", data)


async def audit_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    form, page, _ = await _filtered(dashboard, viewer, request, "list_audit_events", _AUDIT_FILTERS)
    data = {
        "form": form,
        "events": page.items if page else [],
        "older": _older(request, page.next_cursor if page else None),
        "paged": bool(request.query_params.get("cursor")),
    }
    return dashboard.page(request, viewer, "audit.html", data)
