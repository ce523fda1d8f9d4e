"""MCP over streamable HTTP against a running ``cadenza serve`` on 127.0.0.1: the
same app as the REST API, bearer API keys, the scheduler running beside it."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_kit import Live, Served, Target, insert_proposal, make_agent, ok, tool_error
from scenarios import Backstage, exercise_every_tool, set_up_flash_sale

from cadenza.actions import REGISTRY
from cadenza.domain.identity import Scope
from catalogue_cases import open_incident

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SESSION_SECONDS = 120


@asynccontextmanager
async def connect(url: str, key: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, read_timeout_seconds=30) as client:
            yield client


async def test_the_mcp_endpoint_refuses_requests_without_a_bearer_key(served: Served) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        bare = await http.post(served.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        wrong = await http.post(served.url, json={}, headers={"Authorization": "Bearer cdz_x_y"})
    for response in (bare, wrong):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["code"] == "authentication_failed"


async def test_cadenza_serve_answers_every_tool_over_streamable_http_and_stops_on_sigterm(
    served: Served, live: Live, target: Target
) -> None:
    tenant_id, key = await make_agent(live, "remote@example.com", frozenset({Scope.ADMIN}))

    async def make_proposal(endpoint_id: str) -> str:
        return await insert_proposal(live.services, tenant_id, endpoint_id)

    async def make_incident(endpoint_id: str) -> str:
        return await open_incident(live.services, tenant_id, endpoint_id)

    with anyio.fail_after(SESSION_SECONDS):
        async with connect(served.url, key) as client:

            async def scheduled_run(endpoint_id: str) -> str:
                # The scheduler in ``serve`` performs the one-shot run against the target.
                while True:
                    args = {"endpoint_id": endpoint_id, "limit": 1}
                    runs = ok(await client.call_tool("list_runs", args))["items"]
                    if runs:
                        return str(runs[0]["id"])
                    await anyio.sleep(0.2)

            names = [t.name for t in (await client.list_tools()).tools]
            now = live.services.clock.now()
            backstage = Backstage(scheduled_run, make_proposal, make_incident)
            seen = await exercise_every_tool(client, target.base, backstage, now)
            bad = tool_error(await client.call_tool("apply_interval_hint", {"endpoint_id": 1}))
    assert names == [a.name for a in REGISTRY]
    assert sorted(seen) == sorted(names)
    assert seen["whoami"]["actor"]["kind"] == "agent"
    assert target.hits["/health"] >= 2
    assert bad["code"] == "invalid_input"
    assert {"endpoint_id", "interval_seconds"} <= {p["field"] for p in bad["errors"]}
    served.process.send_signal(signal.SIGTERM)
    with anyio.fail_after(30):
        assert await served.process.wait() == 0


async def test_over_http_a_missing_scope_and_another_tenants_id_are_tool_errors(
    served: Served, live: Live, target: Target
) -> None:
    _, owner = await make_agent(live, "owner@example.com", frozenset({Scope.ADMIN}))
    _, reader = await make_agent(live, "reader@example.com", frozenset({Scope.JOBS_READ}))
    with anyio.fail_after(SESSION_SECONDS):
        async with connect(served.url, owner) as client:
            sale = await set_up_flash_sale(client, target.base, live.services.clock.now())
        async with connect(served.url, reader) as client:
            denied = tool_error(await client.call_tool("create_job", {"name": "nope"}))
            hidden = tool_error(await client.call_tool("get_job", {"job_id": sale.job_id}))
            ep_id = sale.endpoints["traffic_analyzer"]
            other = tool_error(await client.call_tool("explain_schedule", {"endpoint_id": ep_id}))
    assert denied["code"] == "permission_denied"
    assert hidden["code"] == "job_not_found"
    assert other["code"] == "endpoint_not_found"
