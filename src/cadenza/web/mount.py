"""``mount_dashboard``: the dashboard's routes on the app that serves the API.

Routes are added to the app itself (not a sub-application mounted at ``/``), so
the API's own paths and its problem+json answers for unknown ``/api/…`` paths are
untouched. None of them appears in the OpenAPI document.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from cadenza.actions.base import Services
from cadenza.web.controls import perform, show
from cadenza.web.core import Dashboard, Handler, guarded
from cadenza.web.gate import SessionGate
from cadenza.web.pages.alerts import alerts_page
from cadenza.web.pages.endpoints import endpoint_page
from cadenza.web.pages.jobs import job_page
from cadenza.web.pages.keys import keys_page, live_feed
from cadenza.web.pages.overview import overview_page
from cadenza.web.pages.records import audit_page, run_page, runs_page
from cadenza.web.pages.session import sign_in, sign_in_page, sign_out
from cadenza.web.render import STATIC_DIR, STATIC_PATH, Templates

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("/", "GET", overview_page),
    ("/jobs/{job_id}", "GET", job_page),
    ("/endpoints/{endpoint_id}", "GET", endpoint_page),
    ("/runs", "GET", runs_page),
    ("/runs/{run_id}", "GET", run_page),
    ("/audit", "GET", audit_page),
    ("/keys", "GET", keys_page),
    ("/alerts", "GET", alerts_page),
    ("/live", "GET", live_feed),
    ("/controls/{name}", "GET", show),
    ("/controls/{name}", "POST", perform),
    ("/sign-in", "GET", sign_in_page),
    ("/sign-in", "POST", sign_in),
    ("/sign-out", "POST", sign_out),
)


class VersionedStatic(StaticFiles):
    """Static files; a URL with the file's version (``?v=<hash>``, as the templates
    write them) may be kept by browsers for a year, any other is revalidated."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if versioned else "no-cache"
        )
        return response


def mount_dashboard(app: Starlette, services: Services, gate: SessionGate) -> Dashboard:
    """Add the dashboard's pages, controls, live feed and static files to ``app``."""
    dashboard = Dashboard(services, gate, Templates())
    for path, method, handler in ROUTES:
        app.router.add_route(
            path, guarded(dashboard, handler), methods=[method], include_in_schema=False
        )
    app.mount(STATIC_PATH, VersionedStatic(directory=STATIC_DIR), name="dashboard-static")
    return dashboard
