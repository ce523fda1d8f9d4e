"""On-demand endpoints through MCP (#16, capability 1): an agent adds one without a
baseline, sees that it runs only when asked, asks once, and removes a baseline with
null."""

from __future__ import annotations

import pytest
from mcp.client.client import Client
from mcp_kit import Target, Tenant, ok, record_run

from cadenza.actions.base import Services
from cadenza.domain.model import PlanSource
from cadenza.mcp.server import build_server, fixed_caller

pytestmark = pytest.mark.anyio


async def test_an_agent_runs_an_on_demand_endpoint_only_when_it_asks(
    services: Services, alice: Tenant, target: Target
) -> None:
    async with Client(build_server(services, fixed_caller(alice.caller))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "on demand" in tools["add_endpoint"].description
        job = ok(await client.call_tool("create_job", {"name": "site"}))
        request = {"url": target.url("/page")}
        args = {"job_id": job["id"], "name": "page", "request": request}
        ep = ok(await client.call_tool("add_endpoint", args))
        assert (ep["baseline"], ep["state"]["next_run_source"]) == (None, "on-demand")
        explained = ok(await client.call_tool("explain_schedule", {"endpoint_id": ep["id"]}))
        assert explained["plan"]["next_run_at"] is None
        assert await record_run(services) == []

        ok(await client.call_tool("schedule_one_shot_run", {"endpoint_id": ep["id"]}))
        (run,) = await record_run(services)
        assert run.source is PlanSource.HINT_ONE_SHOT
        assert await record_run(services) == []

        args = {"job_id": job["id"], "name": "health", "request": request}
        health = ok(
            await client.call_tool("add_endpoint", {**args, "baseline": {"interval_seconds": 60}})
        )
        removed = ok(
            await client.call_tool(
                "update_endpoint", {"endpoint_id": health["id"], "baseline": None}
            )
        )
        assert (removed["baseline"], removed["state"]["next_run_at"]) == (None, None)
