"""The job page: its endpoints with next run, plan source, last status, success rate
and a sparkline of recent durations; pause, resume, edit and archive the job; add
an endpoint.

Read through ``get_job``, ``list_endpoints`` (one keyset page) and, per endpoint on
the page, ``list_runs`` for its last ``RECENT_RUNS`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cadenza.web.controls import control_view
from cadenza.web.core import Dashboard
from cadenza.web.timeline import sparkline

ENDPOINTS_PER_PAGE = 50
RECENT_RUNS = 30


@dataclass(frozen=True, slots=True)
class EndpointRow:
    endpoint: Any
    runs: int
    success_rate: float | None
    spark: Any


async def job_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    job_id = request.path_params["job_id"]
    cursor = request.query_params.get("cursor") or None
    job = await dashboard.call(viewer, "get_job", {"job_id": job_id})
    page = await dashboard.call(
        viewer,
        "list_endpoints",
        {"job_id": job_id, "cursor": cursor, "limit": ENDPOINTS_PER_PAGE},
    )
    rows = []
    for endpoint in page.items:
        runs = await dashboard.call(
            viewer, "list_runs", {"endpoint_id": endpoint.id, "limit": RECENT_RUNS}
        )
        ok = sum(1 for r in runs.items if r.status.ok)
        rate = ok / len(runs.items) if runs.items else None
        rows.append(EndpointRow(endpoint, len(runs.items), rate, sparkline(runs.items)))
    here = request.url.path
    ids = {"job_id": job_id}
    data = {
        "job": job,
        "rows": rows,
        "cursor": cursor,
        "next_cursor": page.next_cursor,
        "live_url": f"/live?job_id={job_id}",
        "controls": {
            "pause": control_view("pause_job", ids, next_url=here),
            "resume": control_view("resume_job", ids, next_url=here),
            "archive": control_view("archive_job", ids, next_url=here),
            "add_endpoint": control_view("add_endpoint", ids, next_url=here),
        },
    }
    template = "job_live.html" if request.query_params.get("part") == "live" else "job.html"
    return dashboard.page(request, viewer, template, data)
