"""Every action as an MCP tool, through the official client connected in memory: each
example, bad arguments, arguments only a lax parser would take, a missing scope and
another tenant's id.

The tables are shared with the REST tests (``catalogue_cases``); a test checks that
they cover the whole registry, so a new action cannot slip past these.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp.client.client import Client
from mcp_kit import Target, Tenant, add_key, insert_proposal, ok, record_run
from mcp_kit import tool_error as error_of

from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import Services
from cadenza.domain.identity import ALL_SCOPES, KeyKind, Scope
from cadenza.domain.limits import MAX_ONE_SHOTS
from cadenza.mcp.server import CATALOG_URI, SCHEDULING_URI, build_server, fixed_caller
from cadenza.mcp.tools import registry_tools
from catalogue_cases import (
    BAD,
    EXAMPLES,
    LATER,
    MISSING,
    NAMES,
    SCOPED,
    STRICT,
    WITH_IDS,
    alert_ids,
    example_arguments,
    good_arguments,
    with_ids,
)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def connect(services: Services, tenant: Tenant) -> AsyncIterator[Client]:
    async with Client(build_server(services, fixed_caller(tenant.caller))) as client:
        yield client


async def build_world(client: Client, services: Services, target: Target) -> dict[str, str]:
    """A job, an endpoint with one run and one pending planner proposal, and a spare API
    key; their ids by field name."""
    job = ok(await client.call_tool("create_job", {"name": "site"}))
    args = {"job_id": job["id"], "name": "health", "request": {"url": target.url("/health")}}
    endpoint = ok(
        await client.call_tool("add_endpoint", {**args, "baseline": {"interval_seconds": 300}})
    )
    runs = await record_run(services)
    key = ok(await client.call_tool("create_api_key", {"name": "spare", "scopes": ["runs:read"]}))
    tenant_id = ok(await client.call_tool("whoami", {}))["tenant_id"]
    later = {"endpoint_id": endpoint["id"], **LATER}
    queued = ok(await client.call_tool("schedule_one_shot_run", later))
    return {
        "one_shot_id": queued["one_shot_id"],
        "job_id": job["id"],
        "endpoint_id": endpoint["id"],
        "run_id": runs[0].id,
        "key_id": key["key"]["id"],
        "proposal_id": await insert_proposal(services, tenant_id, endpoint["id"]),
        **await alert_ids(services, tenant_id),
    }


def test_the_tables_cover_every_action_of_the_registry() -> None:
    assert set(BAD) == set(NAMES)
    assert {name for name, _ in EXAMPLES} == set(NAMES)


async def test_the_tool_list_is_the_registry_with_compact_schemas_and_its_annotations(
    services: Services, alice: Tenant
) -> None:
    async with connect(services, alice) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    specs = {spec.name: spec for spec in registry_tools()}
    assert list(tools) == NAMES
    for action in REGISTRY:
        tool = tools[action.name]
        assert tool.input_schema == specs[action.name].input_schema
        assert tool.output_schema == specs[action.name].output_schema
        assert tool.output_schema["type"] == "object"
        hints = tool.annotations
        assert hints is not None
        read_only = not action.mutates and action.idempotent
        assert _hint(hints.read_only_hint, default=False) is read_only
        if not read_only:  # the other hints only mean something for a tool that writes
            assert _hint(hints.destructive_hint, default=True) is action.destructive
            assert _hint(hints.idempotent_hint, default=False) is action.idempotent
        assert tool.description
        assert tool.description.startswith(action.description.strip())


def _hint(value: bool | None, *, default: bool) -> bool:
    """A hint as a client reads it: left out means the protocol's default."""
    return default if value is None else value


async def test_a_key_lists_only_the_tools_its_scopes_allow(
    services: Services, alice: Tenant
) -> None:
    reader = await add_key(services, alice.tenant_id, frozenset({Scope.JOBS_READ}))
    async with connect(services, reader) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {a.name for a in REGISTRY if a.scopes <= {Scope.JOBS_READ}}


async def test_a_tool_that_sends_a_request_is_not_advertised_as_read_only(
    services: Services, alice: Tenant
) -> None:
    async with connect(services, alice) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    sends, reads = tools["test_endpoint"].annotations, tools["list_runs"].annotations
    assert sends is not None
    assert reads is not None
    assert _hint(sends.read_only_hint, default=False) is False
    assert reads.read_only_hint is True


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
async def test_every_example_of_every_tool_succeeds(
    services: Services, alice: Tenant, target: Target, name: str, index: int
) -> None:
    async with connect(services, alice) as client:
        ids = await build_world(client, services, target)
        arguments = with_ids(name, ids, example_arguments(name, index, ids))
        result = ok(await client.call_tool(name, arguments))
    action = BY_NAME[name]
    if action.streams:
        assert result["media_type"] in action.streams
        for item in result["items"]:
            action.output_model.model_validate(item)
    else:
        action.output_model.model_validate(result)


@pytest.mark.parametrize("name", NAMES)
async def test_every_tool_answers_bad_arguments_with_an_error_naming_the_field(
    services: Services, alice: Tenant, target: Target, name: str
) -> None:
    arguments, field = BAD[name]
    async with connect(services, alice) as client:
        ids = await build_world(client, services, target)
        error = error_of(await client.call_tool(name, with_ids(name, ids, arguments)))
    assert error["code"] == "invalid_input"
    assert field in [p["field"] for p in error["errors"]], error
    assert error["retryable"] is False


@pytest.mark.parametrize("case", sorted(STRICT))
async def test_arguments_only_a_lax_parser_would_take_are_refused(
    services: Services, alice: Tenant, target: Target, case: str
) -> None:
    name, arguments, field = STRICT[case]
    async with connect(services, alice) as client:
        ids = await build_world(client, services, target)
        error = error_of(await client.call_tool(name, with_ids(name, ids, arguments)))
    assert error["code"] == "invalid_input"
    assert field in [p["field"] for p in error["errors"]], error


@pytest.mark.parametrize("name", SCOPED)
async def test_every_tool_refuses_a_key_without_its_scope(
    services: Services, alice: Tenant, target: Target, name: str
) -> None:
    action = BY_NAME[name]
    async with connect(services, alice) as client:
        ids = await build_world(client, services, target)
    others = frozenset(ALL_SCOPES - action.scopes - {Scope.ADMIN})
    limited = await add_key(services, alice.tenant_id, others)
    async with connect(services, limited) as client:
        error = error_of(await client.call_tool(name, good_arguments(name, ids)))
    assert error["code"] == "permission_denied"
    assert "whoami" in error["hint"]


@pytest.mark.parametrize("name", WITH_IDS)
async def test_every_tool_answers_another_tenants_id_as_not_found(
    services: Services, alice: Tenant, bob: Tenant, target: Target, name: str
) -> None:
    async with connect(services, alice) as client:
        ids = await build_world(client, services, target)
    async with connect(services, bob) as client:
        stolen = error_of(await client.call_tool(name, good_arguments(name, ids)))
        unknown = error_of(await client.call_tool(name, good_arguments(name, MISSING)))
    assert stolen["code"].endswith("not_found")
    assert stolen["code"] == unknown["code"]


async def test_an_unknown_tool_is_a_tool_error(services: Services, alice: Tenant) -> None:
    async with connect(services, alice) as client:
        error = error_of(await client.call_tool("drop_database", {}))
    assert error["code"] == "unknown_tool"


async def test_an_agent_key_is_the_actor_of_the_audit_events_it_causes(
    services: Services, alice: Tenant
) -> None:
    agent = await add_key(services, alice.tenant_id, frozenset({Scope.ADMIN}), KeyKind.AGENT)
    async with connect(services, agent) as client:
        job = ok(await client.call_tool("create_job", {"name": "by-agent", "reason": "setup"}))
        events = ok(await client.call_tool("list_audit_events", {"limit": 5}))["items"]
        me = ok(await client.call_tool("whoami", {}))
    created = next(e for e in events if e["target_id"] == job["id"])
    assert created["actor"]["kind"] == "agent"
    assert created["actor"]["id"] == agent.caller.actor.id
    assert me["actor"]["kind"] == "agent"


async def test_the_resources_hold_the_scheduling_rules_and_the_catalog(
    services: Services, alice: Tenant
) -> None:
    async with connect(services, alice) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        guide = (await client.read_resource(SCHEDULING_URI)).contents[0]
        catalog = (await client.read_resource(CATALOG_URI)).contents[0]
    assert uris == {SCHEDULING_URI, CATALOG_URI}
    assert "Pause wins" in guide.text  # type: ignore[union-attr]
    actions = json.loads(catalog.text)["actions"]  # type: ignore[union-attr]
    assert [a["name"] for a in actions] == NAMES
    assert all(a["input_schema"] and a["output_schema"] for a in actions)


async def test_one_shots_queue_are_listed_and_cancelled_one_by_one_as_tools(
    services: Services, alice: Tenant, target: Target
) -> None:
    async with connect(services, alice) as client:
        ids = await build_world(client, services, target)
        ref = {"endpoint_id": ids["endpoint_id"]}
        week = ok(await client.call_tool("schedule_one_shot_run", {**ref, "delay_seconds": 604800}))
        shown = ok(await client.call_tool("get_endpoint", ref))["hints"]["one_shots"]
        assert [s["id"] for s in shown] == [ids["one_shot_id"], week["one_shot_id"]]
        gone = {**ref, "one_shot_id": week["one_shot_id"]}
        ok(await client.call_tool("cancel_one_shot", gone))
        missing = error_of(await client.call_tool("cancel_one_shot", gone))
        for n in range(MAX_ONE_SHOTS - 1):
            ok(await client.call_tool("schedule_one_shot_run", {**ref, "delay_seconds": 60 + n}))
        full = error_of(await client.call_tool("schedule_one_shot_run", ref))
    assert (missing["code"], missing["retryable"]) == ("one_shot_not_found", False)
    assert (full["code"], full["retryable"]) == ("one_shot_queue_full", False)
    assert "cancel_one_shot" in full["message"]
