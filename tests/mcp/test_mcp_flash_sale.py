"""The seed's flash sale, set up and steered by an agent through MCP tools alone."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from mcp.client.client import Client
from mcp_kit import Target, Tenant, add_key, insert_proposal, ok, record_run
from scenarios import FLASH_SALE, Backstage, exercise_every_tool, rfc3339, set_up_flash_sale

from cadenza.actions import REGISTRY
from cadenza.actions.base import Services
from cadenza.domain.identity import KeyKind, Scope
from cadenza.mcp.server import build_server, fixed_caller
from catalogue_cases import open_incident

pytestmark = pytest.mark.anyio


@pytest.fixture
async def agent(services: Services, alice: Tenant) -> Tenant:
    return await add_key(services, alice.tenant_id, frozenset({Scope.ADMIN}), KeyKind.AGENT)


async def test_the_flash_sale_is_set_up_through_tools_with_investigation_paused(
    services: Services, agent: Tenant, target: Target
) -> None:
    async with Client(build_server(services, fixed_caller(agent.caller))) as client:
        sale = await set_up_flash_sale(client, target.base, services.clock.now())
        listed = ok(await client.call_tool("list_endpoints", {"job_id": sale.job_id}))
    endpoints = listed["items"]
    assert len(endpoints) == 10
    assert Counter(e["tier"] for e in endpoints) == Counter(t for _, t, _, _ in FLASH_SALE)
    for endpoint in endpoints:
        paused = endpoint["tier"] == "investigation"
        assert (endpoint["hints"]["pause"] is not None) is paused, endpoint["name"]
        assert (endpoint["state"]["next_run_source"] == "paused") is paused
        assert endpoint["request"]["url"].startswith("http://127.0.0.1:")
    recovery = [e for e in endpoints if e["tier"] == "recovery"]
    assert all(e["min_interval_seconds"] >= 600 for e in recovery)
    for endpoint in endpoints:
        on_demand = endpoint["tier"] in ("recovery", "alert")
        assert (endpoint["state"]["next_run_source"] == "on-demand") is on_demand
        assert (endpoint["state"]["next_run_at"] is None) is on_demand


async def test_a_hint_and_a_pause_on_the_flash_sale_show_in_explain_schedule(
    services: Services, agent: Tenant, target: Target
) -> None:
    now = services.clock.now()
    async with Client(build_server(services, fixed_caller(agent.caller))) as client:
        sale = await set_up_flash_sale(client, target.base, now)
        traffic, slack = sale.endpoints["traffic_analyzer"], sale.endpoints["slack_ops_alert"]
        hint = {"interval_seconds": 30, "ttl_seconds": 1200, "reason": "traffic spiked"}
        ok(await client.call_tool("apply_interval_hint", {"endpoint_id": traffic, **hint}))
        # The alert is on demand: a heads-up asked for, then held until the pause ends.
        heads_up = {"endpoint_id": slack, "delay_seconds": 300, "reason": "surge"}
        ok(await client.call_tool("schedule_one_shot_run", heads_up))
        until = now + timedelta(minutes=30)
        pause = {"until": rfc3339(until), "reason": "recovering: no noisy alerts"}
        change = ok(
            await client.call_tool("pause_or_resume_endpoint", {"endpoint_id": slack, **pause})
        )
        hinted = ok(await client.call_tool("explain_schedule", {"endpoint_id": traffic}))
        paused = ok(await client.call_tool("explain_schedule", {"endpoint_id": slack}))
        audit = ok(await client.call_tool("list_audit_events", {"limit": 50}))
    assert hinted["plan"]["source"] == "hint-interval"
    assert any(step["rule"] for step in hinted["plan"]["explanation"])
    assert all(p["source"] == "hint-interval" for p in hinted["preview"][:3])
    assert paused["plan"]["source"] == "paused"
    assert paused["plan"]["next_run_at"] == rfc3339(until)
    assert paused["stored_next_run_at"] == rfc3339(until)
    event = next(e for e in audit["items"] if e["id"] == change["audit_event_id"])
    assert event["actor"]["kind"] == "agent"
    assert event["reason"] == "recovering: no noisy alerts"


async def test_one_session_calls_every_tool_of_the_registry(
    services: Services, agent: Tenant, target: Target
) -> None:
    async def make_run(endpoint_id: str) -> str:
        runs = await record_run(services)
        return next(r.id for r in runs if r.endpoint_id == endpoint_id)

    async def make_proposal(endpoint_id: str) -> str:
        return await insert_proposal(services, agent.tenant_id, endpoint_id)

    async def make_incident(endpoint_id: str) -> str:
        return await open_incident(services, agent.tenant_id, endpoint_id)

    backstage = Backstage(make_run, make_proposal, make_incident)
    async with Client(build_server(services, fixed_caller(agent.caller))) as client:
        seen = await exercise_every_tool(client, target.base, backstage, services.clock.now())
    assert sorted(seen) == sorted(a.name for a in REGISTRY)
    assert seen["test_endpoint"]["success"] is True
    assert target.hits["/health"] == 1
