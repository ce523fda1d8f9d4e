"""Operations routes: ``/healthz``, ``/readyz`` and ``/metrics``, and the request
metrics middleware.

* ``/healthz`` answers 200 whenever the process answers at all (liveness).
* ``/readyz`` answers 200 when every readiness check passes and 503 otherwise, with
  each check's verdict as JSON (``cadenza.adapters.probes``).
* ``/metrics`` is the Prometheus text format. Without ``metrics_token`` it is open,
  like most exporters (the server listens on 127.0.0.1 by default); with one, a
  scrape must send ``Authorization: Bearer <token>``.

All three are outside ``/api/`` (no API key, no rate limit) and cheap: the probes
are polled every few seconds by orchestrators.

``RequestMetrics`` counts every HTTP request by route *template* (``/api/v1/jobs/
{job_id}``, never the raw path, so ids never become label values); requests that
matched no route count as ``unmatched``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cadenza.ports import Clock, Observer

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]
"""Each check's verdict: ``ok`` or why not (``cadenza.adapters.probes.Readiness``)."""
MetricsRender = Callable[[], tuple[bytes, str]]
"""The metrics body and its content type."""

PROBE_PATHS = ("/healthz", "/readyz", "/metrics")


def add_probe_routes(
    app: FastAPI,
    *,
    readiness: ReadinessCheck | None,
    metrics: MetricsRender | None,
    metrics_token: str = "",
) -> None:
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def readyz() -> JSONResponse:
        checks = await readiness() if readiness is not None else {}
        ready = all(v == "ok" for v in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def scrape(request: Request) -> Response:
        if metrics is None:
            return PlainTextResponse("Metrics are off in this process.\n", status_code=404)
        if metrics_token and not _bearer_matches(request, metrics_token):
            return PlainTextResponse(
                "A bearer token is needed.\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body, content_type = metrics()
        return Response(body, media_type=content_type)

    options: dict[str, Any] = {"include_in_schema": False}
    app.add_api_route("/healthz", healthz, methods=["GET"], **options)
    app.add_api_route("/readyz", readyz, methods=["GET"], **options)
    app.add_api_route("/metrics", scrape, methods=["GET"], **options)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


class RequestMetrics:
    """Plain ASGI middleware: one ``Observer.api_request`` per HTTP request."""

    def __init__(self, app: ASGIApp, *, observer: Observer, clock: Clock) -> None:
        self.app = app
        self.observer = observer
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = self.clock.monotonic()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = _template(scope)
            seconds = self.clock.monotonic() - began
            self.observer.api_request(route, str(scope.get("method", "")), status, seconds)


def _template(scope: Scope) -> str:
    """The matched route's template under its mount (``root_path``), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return f"{scope.get('root_path', '')}{path}" or "/"
