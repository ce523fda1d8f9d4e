"""API keys: create one (scopes and kind; its secret is shown once), list, revoke;
and the live feed every page listens to.

The live feed is the catalogue's ``stream_run_events`` run in-process for the
signed-in person and sent as Server-Sent Events, the same stream ``GET
/api/v1/events`` sends; pages refresh their live parts when an event arrives.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from cadenza.actions.base import LineStream
from cadenza.web.controls import control_view
from cadenza.web.core import Dashboard

KEYS_PER_PAGE = 100


async def keys_page(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    cursor = request.query_params.get("cursor") or None
    page = await dashboard.call(viewer, "list_api_keys", {"cursor": cursor, "limit": KEYS_PER_PAGE})
    rows = [
        (
            key,
            None
            if key.revoked_at
            else control_view("revoke_key", {"key_id": key.id}, next_url="/keys"),
        )
        for key in page.items
    ]
    data = {
        "rows": rows,
        "next_cursor": page.next_cursor,
        "create": control_view("create_key", next_url="/keys"),
    }
    template = "keys_live.html" if request.query_params.get("part") == "live" else "keys.html"
    return dashboard.page(request, viewer, template, data)


async def live_feed(dashboard: Dashboard, request: Request) -> Response:
    viewer = await dashboard.viewer(request)
    wanted = {
        k: request.query_params[k] for k in ("job_id", "endpoint_id") if k in request.query_params
    }
    stream = await dashboard.call(viewer, "stream_run_events", wanted)
    assert isinstance(stream, LineStream)
    return StreamingResponse(
        stream.lines,
        media_type=stream.media_type,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
