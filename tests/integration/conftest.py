"""Fixtures for the dispatcher's integration tests: a socket-level egress guard, a
loopback HTTP server that plays the targets, and dispatcher/endpoint builders."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.http import HttpDispatcher, signing
from cadenza.domain.model import Endpoint, Method, Request
from cadenza.domain.schedule import IntervalSchedule
from cadenza.testing.dispatch import EgressGuard

HUGE_BYTES = 50 * 1024 * 1024
BOMB_BYTES = 20 * 1024 * 1024
_CHUNK = b"x" * (64 * 1024)


@pytest.fixture
def no_egress() -> Iterator[EgressGuard]:
    """Only loopback traffic and no DNS: a refused connect or lookup is never
    performed, and the test fails at teardown even if the code swallowed it."""
    with EgressGuard(names={"localhost": ["127.0.0.1"]}) as guard:
        yield guard
    if guard.violations:
        pytest.fail(f"egress guard refused: {guard.violations}")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Target:
    """The loopback server's address and what it saw."""

    base: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    received: list[Received] = field(default_factory=list)
    signing_keys: list[str] = field(default_factory=list)
    huge_bytes_sent: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base + path


async def _record(http_target: Target, request: web.Request) -> bytes:
    body = await request.read()
    http_target.hits[request.path] += 1
    http_target.received.append(Received(request.method, request.path, dict(request.headers), body))
    return body


def _routes(http_target: Target) -> web.RouteTableDef:
    routes = web.RouteTableDef()

    @routes.route("*", "/ok")
    async def ok(request: web.Request) -> web.Response:
        await _record(http_target, request)
        return web.Response(text="hello")

    @routes.route("*", "/status/{code}")
    async def status(request: web.Request) -> web.Response:
        await _record(http_target, request)
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code}")

    @routes.get("/json")
    async def as_json(request: web.Request) -> web.Response:
        await _record(http_target, request)
        return web.json_response({"status": "ok", "count": 3})

    @routes.route("*", "/echo")
    async def echo(request: web.Request) -> web.Response:
        body = await _record(http_target, request)
        code = int(request.query.get("status", "200"))
        payload = {"headers": dict(request.headers), "body": body.decode()}
        return web.json_response(payload, status=code)

    @routes.get("/flaky")
    async def flaky(request: web.Request) -> web.Response:
        await _record(http_target, request)
        if http_target.hits["/flaky"] <= int(request.query.get("fail", "1")):
            retry_after = request.query.get("retry_after", "1")
            return web.Response(status=503, headers={"Retry-After": retry_after})
        return web.Response(text="recovered")

    @routes.get("/sleep")
    async def sleep(request: web.Request) -> web.Response:
        await _record(http_target, request)
        await _wait(http_target, float(request.query.get("s", "5")))
        return web.Response(text="late")

    @routes.get("/slow-body")
    async def slow_body(request: web.Request) -> web.StreamResponse:
        await _record(http_target, request)
        response = web.StreamResponse(headers={"Content-Length": "20"})
        await response.prepare(request)
        await response.write(b"0123456789")
        await _wait(http_target, 5)
        await response.write(b"0123456789")
        return response

    @routes.get("/huge")
    async def huge(request: web.Request) -> web.StreamResponse:
        await _record(http_target, request)
        chunked = "chunked" in request.query
        headers = {"Content-Type": "application/octet-stream"}
        if not chunked:
            headers["Content-Length"] = str(HUGE_BYTES)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            while http_target.huge_bytes_sent < HUGE_BYTES:
                await response.write(_CHUNK)
                http_target.huge_bytes_sent += len(_CHUNK)
        except (ConnectionError, RuntimeError):
            return response  # the client stopped reading, as it should
        return response

    @routes.get("/bomb")
    async def bomb(request: web.Request) -> web.Response:
        await _record(http_target, request)
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
        return web.Response(body=_gzip_bomb(), headers=headers)

    @routes.route("*", "/redirect")
    async def redirect(request: web.Request) -> web.Response:
        await _record(http_target, request)
        code = int(request.query.get("code", "302"))
        return web.Response(status=code, headers={"Location": request.query["to"]})

    @routes.get("/loop")
    async def loop(request: web.Request) -> web.Response:
        await _record(http_target, request)
        return web.Response(status=302, headers={"Location": "/loop"})

    @routes.route("*", "/signed")
    async def signed(request: web.Request) -> web.Response:
        body = await _record(http_target, request)
        header = request.headers.get(signing.HEADER, "")
        now = SystemClock().now()
        ok = signing.verify(
            header, request.method, str(request.url), body, http_target.signing_keys, now
        )
        return web.Response(status=200 if ok else 401, text="verified" if ok else "bad")

    return routes


@functools.cache
def _gzip_bomb() -> bytes:
    """About 20 KB that inflate to 20 MB, built without holding the 20 MB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    zeros = bytes(len(_CHUNK))
    parts = [packer.compress(zeros) for _ in range(BOMB_BYTES // len(zeros))]
    return b"".join([*parts, packer.flush()])


async def _wait(http_target: Target, seconds: float) -> None:
    # Handlers that stall end when the test ends, so teardown never waits on them.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(http_target.release.wait(), seconds)


@pytest.fixture
async def http_target() -> AsyncIterator[Target]:
    """An aiohttp server on 127.0.0.1 (port chosen by the OS)."""
    state = Target()
    app = web.Application()
    app.add_routes(_routes(state))
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LOOPBACK = ["127.0.0.1/32"]

MakeEndpoint = Callable[..., Endpoint]
MakeDispatcher = Callable[..., HttpDispatcher]


def build_endpoint(url: str, method: str = "GET", **request: Any) -> Endpoint:
    """An endpoint for ``url``; keyword arguments override ``Request`` fields."""
    return Endpoint(
        id="ep-1",
        job_id="job-1",
        tenant_id="tenant-1",
        name="target",
        request=Request(Method(method), url, **request),
        baseline=IntervalSchedule(timedelta(minutes=1)),
        created_at=SLOT,
        updated_at=SLOT,
    )


@pytest.fixture
def endpoint_for() -> MakeEndpoint:
    return build_endpoint


@pytest.fixture
async def make_dispatcher() -> AsyncIterator[MakeDispatcher]:
    """Builds ``HttpDispatcher``s on the system clock (loopback allowlisted unless
    told otherwise) and closes them all at teardown."""
    made: list[HttpDispatcher] = []

    def make(**options: Any) -> HttpDispatcher:
        options.setdefault("allowlist", LOOPBACK)
        dispatcher = HttpDispatcher(options.pop("clock", SystemClock()), **options)
        made.append(dispatcher)
        return dispatcher

    try:
        yield make
    finally:
        for dispatcher in made:
            await dispatcher.close()
