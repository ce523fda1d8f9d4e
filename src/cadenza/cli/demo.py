"""``cadenza demo-target``: the systems of the seed scenarios, live on loopback.

The example manifests (``examples/``) point their endpoints at this server. For each
bundled scenario it answers the scenario's endpoints under ``/<scenario><path>``
(``/flash-sale/ops/traffic``) exactly as the simulation's targets do: the reported
numbers follow the scenario's script, failures answer with their status (and
``Retry-After``), and a recovery endpoint's first call sets its effect in motion.
The script's clock starts at a scenario's first request and runs ``speed`` times
real time, so applying an example and waiting shows the planner adapt to the
story. It listens on loopback only: it is a demonstration, not a service.
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime

import typer
from aiohttp import web

from cadenza.adapters.clock import SystemClock
from cadenza.ports import Clock
from cadenza.simulation.scenario import EndpointSpec, Scenario, load_scenario, scenario_names
from cadenza.simulation.world import World, compare

MAX_LATENCY_SECONDS = 5.0


class DemoTarget:
    """The scenarios' worlds, each on a story clock that starts at its first request."""

    def __init__(self, scenarios: list[Scenario], clock: Clock, *, speed: float, seed: int) -> None:
        self._clock = clock
        self._speed = speed
        self._scenarios = {s.name: s for s in scenarios}
        self._worlds = {s.name: World(s, seed) for s in scenarios}
        self._routes: dict[tuple[str, str, str], EndpointSpec] = {
            (s.name, e.method, e.path): e for s in scenarios for e in s.endpoints
        }
        self._started: dict[str, datetime] = {}

    @property
    def scenario_names(self) -> list[str]:
        return sorted(self._scenarios)

    def story_time(self, scenario: str) -> datetime:
        """Where ``scenario``'s script is now."""
        now = self._clock.now()
        started = self._started.setdefault(scenario, now)
        return self._scenarios[scenario].start + (now - started) * self._speed

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_route("*", "/{scenario}/{path:.*}", self.answer)
        return app

    async def index(self, request: web.Request) -> web.Response:
        listing = {
            name: {
                "title": scenario.title,
                "minute": self._minute(name) if name in self._started else None,
                "endpoints": [f"{e.method} /{name}{e.path}" for e in scenario.endpoints],
            }
            for name, scenario in self._scenarios.items()
        }
        return web.json_response(listing)

    def _minute(self, scenario: str) -> float:
        elapsed = self.story_time(scenario) - self._scenarios[scenario].start
        return round(elapsed.total_seconds() / 60, 2)

    async def answer(self, request: web.Request) -> web.Response:
        scenario = request.match_info["scenario"]
        key = (scenario, request.method, "/" + request.match_info["path"])
        spec = self._routes.get(key)
        if spec is None:
            raise web.HTTPNotFound(text=f"No demo endpoint {request.method} {request.path}.")
        status, body, headers, latency = self.respond(scenario, spec)
        await self._clock.sleep(min(latency, MAX_LATENCY_SECONDS / self._speed))
        return web.Response(
            status=status, text=json.dumps(body), content_type="application/json", headers=headers
        )

    def respond(
        self, scenario: str, spec: EndpointSpec
    ) -> tuple[int, dict[str, object], dict[str, str], float]:
        """Status, JSON body, headers and latency (seconds) of one call to ``spec``."""
        world = self._worlds[scenario]
        at = self.story_time(scenario)
        rng = world.rng(spec.name, at)
        needed = dict.fromkeys([*spec.reports, *(f.signal for f in spec.fails_when)])
        if spec.latency_signal is not None:
            needed[spec.latency_signal] = None
        readings = {name: world.sample(name, at, rng) for name in needed}
        world.ran(spec.name, at)
        failed = next(
            (f for f in spec.fails_when if compare(f.op, readings[f.signal], f.value)), None
        )
        base_ms = readings[spec.latency_signal] if spec.latency_signal else spec.latency_ms
        latency = base_ms * rng.uniform(0.9, 1.1) / 1000 / self._speed
        if failed is not None and failed.retry_after_seconds is not None:
            headers = {"Retry-After": str(failed.retry_after_seconds)}
            return failed.status, {"error": failed.error or "rate limited"}, headers, latency
        body: dict[str, object] = {name: _number(readings[name]) for name in spec.reports}
        if failed is not None:
            body = body or {"error": failed.error or f"HTTP {failed.status}"}
            return failed.status, body, {}, latency
        return 200, body or {"ok": True}, {}, latency


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


async def _serve(target: DemoTarget, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT; the bound address goes to stderr."""
    runner = web.AppRunner(target.app(), access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        url = (
            f"http://{bound_host}:{bound_port}"
            if ":" not in bound_host
            else f"http://[{bound_host}]:{bound_port}"
        )
        names = ", ".join(target.scenario_names)
        typer.echo(f"Demo target on {url} ({names}).", err=True)
        typer.echo(f"  Apply an example with: DEMO_TARGET={url} cadenza apply -f …", err=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve_demo(host: str, port: int, speed: float, seed: int) -> None:
    """Every bundled scenario on ``host:port`` until SIGTERM or SIGINT."""
    scenarios = [load_scenario(name) for name in scenario_names()]
    target = DemoTarget(scenarios, SystemClock(), speed=speed, seed=seed)
    asyncio.run(_serve(target, host, port))
