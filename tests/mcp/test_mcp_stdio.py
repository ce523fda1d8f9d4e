"""``cadenza mcp`` as a desktop client starts it: a subprocess speaking MCP on stdio,
driven by the official client, over a migrated SQLite file."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_kit import Live, Target, insert_proposal, make_agent, ok, record_run, tool_error
from scenarios import Backstage, exercise_every_tool

from cadenza.actions import REGISTRY
from cadenza.domain.identity import Scope
from catalogue_cases import open_incident

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SESSION_SECONDS = 120
CADENZA = shutil.which("cadenza", path=str(Path(sys.executable).parent)) or "cadenza"


@asynccontextmanager
async def cadenza_mcp(live: Live, api_key: str) -> AsyncIterator[Client]:
    """The official client connected to a ``cadenza mcp`` subprocess using ``api_key``."""
    params = StdioServerParameters(
        command=CADENZA,
        args=["mcp"],
        env={**live.env, "CADENZA_API_KEY": api_key},
        cwd=live.cwd,
    )
    with (live.cwd / "mcp-stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=30) as client:
            yield client


async def test_cadenza_mcp_over_stdio_lists_the_registry_and_serves_every_tool(
    live: Live, target: Target
) -> None:
    tenant_id, key = await make_agent(live, "desktop@example.com", frozenset({Scope.ADMIN}))

    async def make_run(endpoint_id: str) -> str:
        runs = await record_run(live.services)
        return next(r.id for r in runs if r.endpoint_id == endpoint_id)

    async def make_proposal(endpoint_id: str) -> str:
        return await insert_proposal(live.services, tenant_id, endpoint_id)

    async def make_incident(endpoint_id: str) -> str:
        return await open_incident(live.services, tenant_id, endpoint_id)

    with anyio.fail_after(SESSION_SECONDS):
        async with cadenza_mcp(live, key) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            now = live.services.clock.now()
            seen = await exercise_every_tool(
                client, target.base, Backstage(make_run, make_proposal, make_incident), now
            )
            bad = tool_error(await client.call_tool("create_job", {"name": ""}))
            events = ok(await client.call_tool("list_audit_events", {"limit": 5}))
    assert names == [a.name for a in REGISTRY]
    assert sorted(seen) == sorted(names)
    assert target.hits["/health"] == 1
    assert bad["code"] == "invalid_input"
    assert bad["errors"][0]["field"] == "name"
    assert {e["actor"]["kind"] for e in events["items"]} == {"agent"}


async def test_cadenza_mcp_over_stdio_refuses_missing_scopes_and_other_tenants(
    live: Live, target: Target
) -> None:
    _, owner_key = await make_agent(live, "owner@example.com", frozenset({Scope.ADMIN}))
    _, reader_key = await make_agent(live, "reader@example.com", frozenset({Scope.JOBS_READ}))
    with anyio.fail_after(SESSION_SECONDS):
        async with cadenza_mcp(live, owner_key) as client:
            job = ok(await client.call_tool("create_job", {"name": "owned"}))
        async with cadenza_mcp(live, reader_key) as client:
            denied = tool_error(await client.call_tool("create_job", {"name": "nope"}))
            hidden = tool_error(await client.call_tool("get_job", {"job_id": job["id"]}))
            mine = ok(await client.call_tool("list_jobs", {}))
    assert denied["code"] == "permission_denied"
    assert hidden["code"] == "job_not_found"
    assert mine["items"] == []


async def test_cadenza_mcp_with_an_unknown_key_exits_with_an_error(live: Live) -> None:
    with anyio.fail_after(SESSION_SECONDS):
        result = await anyio.run_process(
            [CADENZA, "mcp"],
            env={**live.env, "PATH": str(Path(sys.executable).parent), "CADENZA_API_KEY": "x"},
            cwd=live.cwd,
            check=False,
        )
    assert result.returncode == 1
    assert b"Malformed API key" in result.stderr
