"""Runs in flight through MCP: an agent sees how many runs of an ``overlap=allow``
endpoint are in flight, and that a full one's next slot waits for one to end."""

from __future__ import annotations

import pytest
from mcp.client.client import Client
from mcp_kit import Target, Tenant, ok

from app_kit import launch_due
from cadenza.actions.base import Services
from cadenza.mcp.server import build_server, fixed_caller

pytestmark = pytest.mark.anyio


async def test_an_agent_sees_the_runs_in_flight_and_a_full_endpoint(
    services: Services, alice: Tenant, target: Target
) -> None:
    async with Client(build_server(services, fixed_caller(alice.caller))) as client:
        job = ok(await client.call_tool("create_job", {"name": "site"}))
        args = {
            "job_id": job["id"],
            "name": "export",
            "request": {"url": target.url("/export")},
            "baseline": {"interval_seconds": 60},
            "overlap": "allow",
            "max_in_flight": 2,
        }
        ep = ok(await client.call_tool("add_endpoint", args))
        assert ep["state"]["in_flight"] == 0
        await launch_due(services)
        await launch_due(services)
        ref = {"endpoint_id": ep["id"]}
        shown = ok(await client.call_tool("get_endpoint", ref))
        assert shown["state"]["in_flight"] == 2
        explained = ok(await client.call_tool("explain_schedule", ref))
        step = explained["plan"]["explanation"][-1]
        assert step["rule"] == "in-flight-full"
        assert "waits for one to end" in step["note"]
