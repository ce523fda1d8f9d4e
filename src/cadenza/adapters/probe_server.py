"""The operations routes of a process without the API: ``cadenza worker`` and
``cadenza planner`` serve ``/metrics``, ``/healthz`` and ``/readyz`` on
``CADENZA_METRICS_HOST:CADENZA_METRICS_PORT`` (127.0.0.1 by default), the same
answers as the API server's (``cadenza.api.probes``), from a small aiohttp server in
the process's own event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import json

from aiohttp import web

from cadenza.adapters.metrics import PrometheusObserver
from cadenza.adapters.probes import Readiness


class ProbeServer:
    """``run()`` serves until ``stop()``. ``port`` 0 picks a free port (tests read
    ``bound_port`` once ``started`` is set)."""

    def __init__(
        self,
        observer: PrometheusObserver,
        readiness: Readiness,
        host: str,
        port: int,
        *,
        token: str = "",
    ) -> None:
        self._observer = observer
        self._readiness = readiness
        self._host = host
        self._port = port
        self._token = token
        self._stop = asyncio.Event()
        self.started = asyncio.Event()
        self.bound_port = 0

    async def run(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
            addresses = runner.addresses
            self.bound_port = int(addresses[0][1]) if addresses else self._port
            self.started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        self._stop.set()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        report = await self._readiness.check()
        body = {"status": "ready" if report.ready else "not ready", "checks": report.checks}
        return web.Response(
            text=json.dumps(body),
            status=200 if report.ready else 503,
            content_type="application/json",
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), self._token):
                return web.Response(status=401, text="A bearer token is needed.\n")
        body, content_type = self._observer.render()
        return web.Response(body=body, headers={"Content-Type": content_type})
