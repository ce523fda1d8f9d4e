"""MCP mounted in an ASGI app, driven in process: the REST API and MCP share one app,
the bearer gate refuses before MCP runs, and the session manager lives in the app's
lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_kit import TOOLS_LIST_BYTES, Tenant, ok
from starlette.applications import Starlette

from cadenza.actions import REGISTRY
from cadenza.actions.base import Services
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.domain import errors
from cadenza.mcp.http import create_mcp_app, mount_mcp

pytestmark = pytest.mark.anyio

BASE = "http://cadenza.test"


@asynccontextmanager
async def running(app: Starlette, key: str | None) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client for ``app`` while its lifespan runs, authenticated with ``key``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx2.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http,
    ):
        yield http


async def test_the_rest_api_and_mcp_share_one_app_and_one_tenant_view(
    services: Services, alice: Tenant
) -> None:
    app = create_app(services, Settings(_env_file=None, rate_limit_per_minute=1000))
    mount_mcp(app, services)
    async with running(app, alice.key) as http:
        transport = streamable_http_client(f"{BASE}/mcp", http_client=http)
        async with Client(transport) as client:
            job = ok(await client.call_tool("create_job", {"name": "from-mcp"}))
        listed = (await http.get("/api/v1/jobs")).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]


async def test_a_request_without_a_usable_key_is_refused_before_mcp_runs(
    services: Services,
) -> None:
    app = create_mcp_app(services)
    unknown = {"Authorization": "Bearer cdz_unknown1_secret"}
    async with running(app, None) as http:
        bare = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        bad = await http.post("/mcp", json={}, headers=unknown)
    assert bare.status_code == bad.status_code == 401
    assert bare.json()["code"] == "authentication_failed"
    assert bad.json()["detail"] == "Unknown, revoked or expired API key."


async def test_an_exhausted_rate_limit_answers_429_with_retry_after(
    services: Services, alice: Tenant
) -> None:
    def exhausted(_caller_id: str) -> None:
        raise errors.RateLimited("Too many requests for this caller.", 1.2)

    app = create_mcp_app(services, rate_limit=exhausted)
    async with running(app, alice.key) as http:
        response = await http.post("/mcp", json={})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["code"] == "rate_limited"


async def test_rest_and_mcp_calls_draw_on_one_rate_limit_per_caller(
    services: Services, alice: Tenant
) -> None:
    app = create_app(services, Settings(_env_file=None, rate_limit_per_minute=3))
    mount_mcp(app, services, rate_limit=app.state.rate_limit)
    async with running(app, alice.key) as http:
        rest = [(await http.get("/api/v1/me")).status_code for _ in range(3)]
        mcp = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert rest == [200, 200, 200]
    assert mcp.status_code == 429


async def test_the_tool_list_of_an_admin_key_fits_in_60_kb_on_the_wire(
    services: Services, alice: Tenant
) -> None:
    app = create_mcp_app(services)
    headers = {"Accept": "application/json, text/event-stream"}
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with running(app, alice.key) as http:
        response = await http.post("/mcp", json=listing, headers=headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["result"]["tools"]) == len(REGISTRY)
    assert len(response.content) <= TOOLS_LIST_BYTES
