"""MCP over streamable HTTP, behind bearer API keys, on any Starlette or FastAPI app.

Every HTTP request must carry ``Authorization: Bearer cdz_…``; ``BearerGate``
answers 401 without a usable key and hands the authenticated caller to the MCP
server through the ASGI scope. The endpoint is stateless (each request is served
on its own, so any API process can answer it) and answers with plain JSON.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cadenza.actions.base import Services
from cadenza.actions.identity import Caller, authenticate_key, caller_for_key
from cadenza.domain import errors
from cadenza.mcp.server import CadenzaMCP, build_server

CALLER_SCOPE_KEY = "cadenza.caller"
"""Where ``BearerGate`` leaves the authenticated ``Caller`` in the ASGI scope."""

RateLimit = Callable[[str], None]
"""Charges one request to a caller id; raises ``RateLimited`` when its bucket is empty."""


async def scope_caller(request: Request | None) -> Caller:
    """The caller ``BearerGate`` authenticated for this HTTP request."""
    caller = None if request is None else request.scope.get(CALLER_SCOPE_KEY)
    if not isinstance(caller, Caller):
        raise errors.AuthenticationFailed("Send an API key as 'Authorization: Bearer cdz_…'.")
    return caller


class BearerGate:
    """ASGI middleware: authenticate ``Authorization: Bearer cdz_…`` on every request.

    Without a usable key the answer is 401 problem+json with ``WWW-Authenticate``;
    an empty rate bucket answers 429 with ``Retry-After``. The caller is left in the
    scope under ``CALLER_SCOPE_KEY`` for ``scope_caller``.
    """

    def __init__(self, app: ASGIApp, services: Services, rate_limit: RateLimit | None) -> None:
        self.app = app
        self.services = services
        self.rate_limit = rate_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            caller = await self._authenticate(Headers(scope=scope).get("authorization", ""))
        except errors.CadenzaError as exc:
            await _gate_refusal(exc)(scope, receive, send)
            return
        scope[CALLER_SCOPE_KEY] = caller
        await self.app(scope, receive, send)

    async def _authenticate(self, header: str) -> Caller:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.AuthenticationFailed("Send an API key as 'Authorization: Bearer cdz_…'.")
        s = self.services
        caller = caller_for_key(
            await authenticate_key(s.store, s.clock, s.keyring, token.strip(), s.key_cache)
        )
        if self.rate_limit is not None:
            self.rate_limit(caller.actor.id)
        return caller


def _gate_refusal(exc: errors.CadenzaError) -> JSONResponse:
    if isinstance(exc, errors.RateLimited):
        status, title = 429, "Too many requests"
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_seconds)))}
    else:
        status, title = 401, "Authentication required"
        headers = {"WWW-Authenticate": 'Bearer realm="cadenza"'}
    body = {
        "type": f"urn:cadenza:problem:{exc.code}",
        "title": title,
        "status": status,
        "detail": exc.message,
        "code": exc.code,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def mount_mcp(
    app: Starlette,
    services: Services,
    *,
    path: str = "/mcp",
    rate_limit: RateLimit | None = None,
) -> None:
    """Serve MCP over streamable HTTP at ``path`` of ``app`` (FastAPI or Starlette).

    Adds the route first, so no catch-all route can shadow it, and wraps the app's
    lifespan so the MCP session manager runs exactly as long as the app: the ASGI
    server must run lifespan events (uvicorn does by default). ``rate_limit``, when
    given, is charged once per request, e.g. the REST API's per-caller buckets.
    """
    server = build_server(services, scope_caller)
    # Every request must carry a bearer key, which a browser never adds on its own,
    # so DNS-rebinding checks (Host/Origin allowlists) add nothing and would break
    # deployments behind their own host names.
    inner = server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.insert(0, Route(path, endpoint=BearerGate(inner, services, rate_limit)))
    _run_during_lifespan(app, server)


def _run_during_lifespan(app: Starlette, server: CadenzaMCP) -> None:
    outer = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        async with server.session_manager.run(), outer(instance) as state:
            yield state

    app.router.lifespan_context = lifespan


def create_mcp_app(services: Services, *, rate_limit: RateLimit | None = None) -> Starlette:
    """A standalone ASGI app serving only MCP at ``/mcp`` (see ``mount_mcp``)."""
    app = Starlette()
    mount_mcp(app, services, rate_limit=rate_limit)
    return app
