"""The dashboard's shared parts: who is looking, calling actions, rendering, errors.

Every page and control runs the catalogue's actions in-process through
``Dashboard.call`` (``cadenza.actions.invoke``): the caller's scopes are checked,
the payload validated by the action's input model and the change audited exactly as
on REST and MCP. Actions another part of Cadenza may not provide (say
``list_workers``) are looked up by name; ``has`` says whether this build has one,
and pages show nothing for an action that is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cadenza.actions import BY_NAME, invoke
from cadenza.actions.base import Context, Services
from cadenza.actions.identity import Caller
from cadenza.domain import errors
from cadenza.web.gate import Csrf, SessionGate, set_nonce
from cadenza.web.render import Templates

Handler = Callable[["Dashboard", Request], Awaitable[Response]]

RETRY_AFTER_SECONDS = "5"
"""Sent with a 503: the database usually comes back within seconds."""

_ERROR_PAGES: tuple[tuple[type[errors.CadenzaError], int, str], ...] = (
    (errors.NotFound, 404, "Not found"),
    (errors.PermissionDenied, 403, "Not allowed"),
    (errors.RateLimited, 429, "Too many requests"),
    (errors.ValidationError, 422, "The request is invalid"),
    (errors.ServiceUnavailable, 503, "Unavailable for a moment"),
    (errors.CadenzaError, 400, "That did not work"),
)
"""The dashboard's one table from error types to pages (REST has its own)."""


def status_of(exc: errors.CadenzaError) -> tuple[int, str]:
    """The HTTP status and title the dashboard answers ``exc`` with."""
    return next((s, t) for kind, s, t in _ERROR_PAGES if isinstance(exc, kind))


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person looking at a page, with the token their forms carry."""

    caller: Caller
    ctx: Context
    csrf: str
    new_nonce: str | None


class SignInNeeded(Exception):
    """The request has no usable session."""


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def redirect(request: Request, url: str) -> Response:
    """Go to ``url``: htmx follows ``HX-Redirect``, a plain form a 303."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class Dashboard:
    """The dashboard of one app: its services, the session gate, CSRF and templates."""

    def __init__(self, services: Services, gate: SessionGate, templates: Templates) -> None:
        self.services = services
        self.gate = gate
        self.csrf = Csrf(services.keyring)
        self.templates = templates

    @staticmethod
    def has(name: str) -> bool:
        """Whether the catalogue of this build has the action ``name``."""
        return name in BY_NAME

    async def viewer(self, request: Request) -> Viewer:
        try:
            caller = await self.gate.caller(request)
        except errors.AuthenticationFailed:
            raise SignInNeeded from None
        ctx = Context.for_caller(self.services, caller.tenant_id, caller.actor, caller.scopes)
        token, nonce = self.csrf.token(request)
        return Viewer(caller, ctx, token, nonce)

    async def call(self, viewer: Viewer, name: str, payload: Mapping[str, Any]) -> Any:
        """Run the catalogue action ``name`` as the viewer; errors are domain types."""
        return await invoke(BY_NAME[name], viewer.ctx, payload)

    async def call_if_present(
        self, viewer: Viewer, name: str, payload: Mapping[str, Any]
    ) -> Any | None:
        """``call``, or ``None`` when this build has no such action."""
        return await self.call(viewer, name, payload) if self.has(name) else None

    def page(
        self,
        request: Request,
        viewer: Viewer | None,
        template: str,
        data: Mapping[str, Any],
        status_code: int = 200,
    ) -> Response:
        """Render ``template`` with ``data`` and what every page needs."""
        context: dict[str, Any] = {
            "request": request,
            "viewer": viewer,
            "csrf": viewer.csrf if viewer else "",
            "now": self.services.clock.now(),
            "has": self.has,
            "live_url": "",
            **data,
        }
        response = self.templates.response(template, context, status_code)
        if viewer is not None:
            set_nonce(response, request, viewer.new_nonce)
        return response

    def error_page(self, request: Request, exc: errors.CadenzaError) -> Response:
        status, title = status_of(exc)
        data = {"title": title, "message": exc.message, "status": status}
        response: Response
        if is_htmx(request):
            response = self.templates.response("error_note.html", data, status)
        else:
            response = self.page(request, None, "error.html", data, status)
        if isinstance(exc, errors.ServiceUnavailable):
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response


def guarded(dashboard: Dashboard, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` as a route endpoint: no session sends the person to sign in, and
    the catalogue's errors become error pages."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(dashboard, request)
        except SignInNeeded:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(request, f"/sign-in?next={quote(here, safe='')}")
        except errors.CadenzaError as exc:
            return dashboard.error_page(request, exc)

    return endpoint
