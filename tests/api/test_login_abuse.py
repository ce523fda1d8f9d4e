"""Password guessing: growing delays per account, per-client limits that a client
cannot dodge with X-Forwarded-For, and a bound on concurrent password checks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from api_kit import PASSWORD, Tenant
from starlette.types import Receive, Scope, Send

from cadenza.actions.base import Services
from cadenza.actions.identity import PasswordChecks
from cadenza.actions.signin import FIRST_DELAY, FREE_FAILURES, MAX_DELAY, retry_delay
from cadenza.adapters.serving import HttpServer
from cadenza.api import create_app
from cadenza.api.hygiene import TrustedProxies
from cadenza.config import Settings
from cadenza.domain import errors
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio
LOOPBACK = "127.0.0.1"


async def attempt(client: httpx2.AsyncClient, email: str, password: str) -> httpx2.Response:
    return await client.post("/api/v1/session", json={"email": email, "password": password})


def clock_of(services: Services) -> FrozenClock:
    assert isinstance(services.clock, FrozenClock)
    return services.clock


def test_delays_start_after_the_free_failures_double_and_stop_at_the_cap() -> None:
    assert retry_delay(FREE_FAILURES - 1) == timedelta(0)
    assert retry_delay(FREE_FAILURES) == FIRST_DELAY
    assert retry_delay(FREE_FAILURES + 1) == 2 * FIRST_DELAY
    assert retry_delay(FREE_FAILURES + 3) == 8 * FIRST_DELAY
    assert retry_delay(10_000) == MAX_DELAY


async def test_the_right_password_is_refused_while_the_account_waits(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    for _ in range(FREE_FAILURES):
        assert (await attempt(client, alice.email, "wrong guess")).status_code == 401
    refused = await attempt(client, alice.email, PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == FIRST_DELAY.total_seconds()
    clock_of(services).advance(FIRST_DELAY)
    assert (await attempt(client, alice.email, PASSWORD)).status_code == 200
    # A success clears the count: the next wrong password is free again.
    assert (await attempt(client, alice.email, "wrong guess")).status_code == 401
    assert (await attempt(client, alice.email, "wrong guess")).status_code == 401


async def test_forty_five_guesses_cannot_be_made_quickly(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    statuses = [(await attempt(client, alice.email, f"guess {i}")).status_code for i in range(45)]
    assert statuses.count(401) == FREE_FAILURES
    assert statuses.count(429) == 45 - FREE_FAILURES
    assert (await attempt(client, alice.email, PASSWORD)).status_code == 429


async def test_waits_grow_with_each_failure_after_a_wait(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    clock = clock_of(services)
    waits = []
    for _ in range(FREE_FAILURES):
        await attempt(client, alice.email, "wrong guess")
    for _ in range(4):
        refused = await attempt(client, alice.email, "wrong guess")
        wait = int(refused.headers["retry-after"])
        waits.append(wait)
        clock.advance(timedelta(seconds=wait))
        assert (await attempt(client, alice.email, "wrong guess")).status_code == 401
    assert waits == [2, 4, 8, 16]


async def test_unknown_addresses_are_throttled_alike(
    client: httpx2.AsyncClient, services: Services
) -> None:
    for _ in range(FREE_FAILURES):
        assert (await attempt(client, "nobody@example.com", "guess")).status_code == 401
    assert (await attempt(client, "nobody@example.com", "guess")).status_code == 429
    assert (await attempt(client, "NoBody@Example.com ", "guess")).status_code == 429


async def test_a_sign_in_beyond_the_concurrent_checks_is_refused_at_once(
    services: Services, alice: Tenant
) -> None:
    checks = PasswordChecks(concurrency=1, waiting=1)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with checks.slot():
            held.set()
            await release.wait()

    async def queue() -> None:
        async with checks.slot():
            pass

    holder = asyncio.create_task(hold())
    await held.wait()
    waiter = asyncio.create_task(queue())
    await asyncio.sleep(0)  # let it queue
    with pytest.raises(errors.RateLimited):
        async with checks.slot():
            pass
    release.set()
    await asyncio.gather(holder, waiter)
    async with checks.slot():
        pass  # free again


async def test_the_api_answers_429_when_password_checks_are_saturated(
    services: Services, alice: Tenant
) -> None:
    checks = PasswordChecks(concurrency=1, waiting=0)
    saturated = Services(
        store=services.store,
        clock=services.clock,
        waker=services.waker,
        dispatcher=services.dispatcher,
        secret_key=services.secret_key,
        auth_store=services.auth_store,
        password_checks=checks,
    )
    app = create_app(saturated, Settings())
    transport = httpx2.ASGITransport(app=app)
    async with (
        httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client,
        checks.slot(),
    ):
        response = await attempt(client, alice.email, PASSWORD)
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def real_server(services: Services, settings: Settings) -> AsyncIterator[str]:
    """The app under uvicorn on 127.0.0.1, as ``cadenza serve`` runs it."""
    port = free_port()
    server = HttpServer(create_app(services, settings), LOOPBACK, port)
    task = asyncio.create_task(server.run())
    base = f"http://{LOOPBACK}:{port}"
    try:
        async with httpx2.AsyncClient(timeout=5) as http:
            for _ in range(200):
                with contextlib.suppress(httpx2.TransportError):
                    await http.get(f"{base}/openapi.json")
                    break
                await asyncio.sleep(0.05)
        yield base
    finally:
        server.stop()
        await asyncio.wait_for(task, 30)


async def spoofed_attempts(base: str, count: int) -> list[int]:
    async with httpx2.AsyncClient(timeout=10) as http:
        return [
            (
                await http.post(
                    f"{base}/api/v1/session",
                    json={"email": f"x{i}@example.com", "password": "guess"},
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                )
            ).status_code
            for i in range(count)
        ]


async def test_x_forwarded_for_from_an_untrusted_client_does_not_reset_its_limit(
    services: Services,
) -> None:
    settings = Settings(rate_limit_per_minute=3)
    async with real_server(services, settings) as base:
        assert await spoofed_attempts(base, 4) == [401, 401, 401, 429]


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(
    services: Services,
) -> None:
    settings = Settings(rate_limit_per_minute=3, trusted_proxies=["127.0.0.1/32"])
    async with real_server(services, settings) as base:
        assert await spoofed_attempts(base, 4) == [401, 401, 401, 401]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client", "scheme"),
    [
        ("10.0.0.2", "198.51.100.7, 10.0.0.1", "198.51.100.7", "https"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7", "https"),
        ("10.0.0.2", "not-an-address, 10.0.0.1", "10.0.0.1", "https"),
        ("10.0.0.2", "", "10.0.0.2", "https"),
        ("192.0.2.9", "198.51.100.7", "192.0.2.9", "http"),
    ],
    ids=["through two proxies", "spoofed left", "garbage", "no header", "untrusted peer"],
)
async def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded: str, client: str, scheme: str
) -> None:
    seen: dict[str, str] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(client=scope["client"][0], scheme=scope["scheme"])

    headers = [(b"x-forwarded-for", forwarded.encode()), (b"x-forwarded-proto", b"https")]
    scope = {"type": "http", "client": (peer, 1234), "scheme": "http", "headers": headers}
    await TrustedProxies(app, ["10.0.0.0/8"])(scope, _never, _never)
    assert seen == {"client": client, "scheme": scheme}


async def _never(*_args: object) -> Any:
    raise AssertionError("the middleware neither reads nor writes")
