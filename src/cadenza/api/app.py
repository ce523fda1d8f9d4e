"""``create_app``: the REST API (and its OpenAPI document) over the action registry.

The composition root builds ``Services`` and ``Settings`` and passes them in; this
module picks no adapters and reads no environment.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from cadenza.actions import REGISTRY
from cadenza.actions.base import Services
from cadenza.api import errors
from cadenza.api.auth import SESSION_COOKIE, Auth, TokenBuckets, add_session_routes
from cadenza.api.docs import add_docs_routes
from cadenza.api.gate import RequestGate
from cadenza.api.hygiene import Hygiene, TrustedProxies
from cadenza.api.openapi import document
from cadenza.api.probes import MetricsRender, ReadinessCheck, RequestMetrics, add_probe_routes
from cadenza.api.routes import add_action_routes
from cadenza.config import Settings

API_PREFIX = "/api/v1"


def create_app(
    services: Services,
    settings: Settings,
    *,
    readiness: ReadinessCheck | None = None,
    metrics: MetricsRender | None = None,
) -> FastAPI:
    """The FastAPI app: every registry action under ``/api/v1``, sign-in routes,
    problem+json errors, request ids, security headers, per-caller rate limits, and
    the ``RequestGate`` (authentication before any body is read, a body size cap).
    OpenAPI is served at ``/openapi.json`` and rendered at ``/docs`` from local assets.
    ``/healthz``, ``/readyz`` (``readiness``) and ``/metrics`` (``metrics``) are the
    operations routes (``cadenza.api.probes``)."""
    app = FastAPI(
        title="Cadenza",
        summary="Adaptive HTTP job scheduler",
        description=(
            "Cron and interval HTTP jobs that steer their own cadence. Authenticate with "
            "'Authorization: Bearer cdz_…' (an API key) or a session from POST "
            f"{API_PREFIX}/session. Errors are application/problem+json (RFC 9457)."
        ),
        version="0.1.0",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    auth = Auth(services, TokenBuckets(settings.rate_limit_per_minute, services.clock))
    add_action_routes(app.router, API_PREFIX, REGISTRY, auth)
    add_session_routes(app.router, API_PREFIX, auth)
    add_docs_routes(app, "/openapi.json", "Cadenza API")
    add_probe_routes(
        app, readiness=readiness, metrics=metrics, metrics_token=settings.metrics_token
    )
    errors.install(app)
    public = [("POST", f"{API_PREFIX}/session"), ("DELETE", f"{API_PREFIX}/session")]
    # The last added runs first: request ids and headers, the client's address, the gate.
    app.add_middleware(
        RequestGate,
        auth=auth,
        max_body_bytes=settings.max_body_bytes,
        api_prefix="/api/",
        public=public,
    )
    app.add_middleware(TrustedProxies, trusted=settings.trusted_proxies)
    app.add_middleware(Hygiene, api_prefix="/api/")
    app.add_middleware(RequestMetrics, observer=services.observer, clock=services.clock)
    app.state.services = services
    # The dashboard (mounted by the composition root) signs people in through it.
    app.state.auth = auth
    # Other surfaces mounted on this app (MCP) take from the same per-caller budget.
    app.state.rate_limit = auth.limiter.take
    _document(app)
    return app


def _document(app: FastAPI) -> None:
    """The OpenAPI document: every action's operation exactly as served
    (``cadenza.api.openapi``), and the two ways to authenticate."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        document(schema, API_PREFIX, REGISTRY)
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "cdz_<prefix>_<secret>"},
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
        }
        schema["security"] = [{"apiKey": []}, {"session": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
