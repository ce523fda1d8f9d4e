"""Every tool through the official TypeScript SDK (npm ``@modelcontextprotocol/sdk``),
which most desktop agents and the MCP Inspector are built on, over streamable HTTP
(``cadenza serve``) and stdio (``cadenza mcp``).

The SDK checks every result's structured content against the tool's output schema,
errors included, and throws when it does not match; so besides what each call
answers (each example succeeds; bad arguments, a missing scope and an unknown id are
tool errors with their code), nothing Cadenza answers may make the SDK throw. The
driver (tests/mcp/ts/driver.mjs) only records; the judging is done here.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp_kit import (
    CADENZA,
    TOOLS_LIST_BYTES,
    Live,
    Served,
    Target,
    insert_proposal,
    make_agent,
    record_run,
)

from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import Context, invoke
from cadenza.actions.identity import authenticate_key, caller_for_key, issue_api_key
from cadenza.domain.identity import ALL_SCOPES, KeyKind, Scope
from cadenza.ports import RunFilter
from catalogue_cases import (
    BAD,
    EXAMPLES,
    LATER,
    MISSING,
    NAMES,
    SCOPED,
    WITH_IDS,
    alert_ids,
    example_arguments,
    good_arguments,
    with_ids,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SESSION_SECONDS = 600
LAST = ("revoke_api_key", "delete_endpoint", "archive_job")
"""Examples that end the world's resources are called after every other."""
SCOPES = sorted(ALL_SCOPES - {Scope.ADMIN})


@dataclass
class World:
    key: str
    ids: dict[str, str]
    keys_without: dict[Scope, str]
    reader: str


async def build_world(live: Live, target: Target) -> World:
    """An agent with an admin key and, in its tenant, a job, an endpoint on the target
    with one run, a spare key and a pending proposal; and one key lacking each scope."""
    s = live.services
    tenant_id, key = await make_agent(live, "typescript@example.com", frozenset({Scope.ADMIN}))
    caller = caller_for_key(await authenticate_key(s.store, s.clock, s.keyring, key))
    ctx = Context.for_caller(s, tenant_id, caller.actor, caller.scopes)
    job = await invoke(BY_NAME["create_job"], ctx, {"name": "typescript"})
    request = {"url": target.url("/health")}
    endpoint = await invoke(
        BY_NAME["add_endpoint"],
        ctx,
        {
            "job_id": job.id,
            "name": "health",
            "request": request,
            "baseline": {"interval_seconds": 3600},
        },
    )
    await invoke(BY_NAME["schedule_one_shot_run"], ctx, {"endpoint_id": endpoint.id})
    spare = await invoke(BY_NAME["create_api_key"], ctx, {"name": "spare", "scopes": ["runs:read"]})
    later = await invoke(
        BY_NAME["schedule_one_shot_run"], ctx, {"endpoint_id": endpoint.id, **LATER}
    )
    ids = {
        "one_shot_id": later.one_shot_id,
        "job_id": job.id,
        "endpoint_id": endpoint.id,
        "run_id": await a_run_of(live, tenant_id, endpoint.id),
        "key_id": spare.key.id,
        "proposal_id": await insert_proposal(s, tenant_id, endpoint.id),
        **await alert_ids(s, tenant_id, target.url("/ok")),
    }

    async def key_with(scopes: frozenset[Scope]) -> str:
        _, plaintext = await issue_api_key(
            s.store, s.clock, s.keyring, tenant_id, "limited", scopes, KeyKind.AGENT, None
        )
        return plaintext

    without = {
        scope: await key_with(frozenset(ALL_SCOPES - {scope, Scope.ADMIN})) for scope in SCOPES
    }
    return World(key, ids, without, await key_with(frozenset({Scope.JOBS_READ})))


async def a_run_of(live: Live, tenant_id: str, endpoint_id: str) -> str:
    """The endpoint's one-shot run: recorded here, or by ``cadenza serve``'s own
    scheduler when it claims it first."""
    await record_run(live.services)
    with anyio.fail_after(SESSION_SECONDS):
        while True:
            async with live.services.store.transaction(readonly=True) as tx:
                page = await tx.list_runs(
                    tenant_id, RunFilter(endpoint_id=endpoint_id), cursor=None, limit=1
                )
            if page.items:
                return page.items[0].id
            await anyio.sleep(0.2)


def local(arguments: dict[str, Any], target: Target) -> dict[str, Any]:
    """Example URLs pointed at the loopback target: nothing leaves this machine."""
    text = json.dumps(arguments).replace("https://example.com", target.base)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def plan_sessions(world: World, target: Target) -> list[dict[str, Any]]:
    ids = world.ids
    admin: list[dict[str, Any]] = []
    for name in NAMES:
        arguments, _ = BAD[name]
        admin.append(
            {"id": f"bad:{name}", "name": name, "arguments": with_ids(name, ids, arguments)}
        )
    for name in WITH_IDS:
        admin.append(
            {"id": f"missing:{name}", "name": name, "arguments": good_arguments(name, MISSING)}
        )
    examples = sorted(EXAMPLES, key=lambda case: case[0] in LAST and LAST.index(case[0]) + 1)
    for name, index in examples:
        arguments = with_ids(name, ids, example_arguments(name, index, ids))
        admin.append({"id": f"example:{name}:{index}", "name": name, "arguments": arguments})
    sessions = [{"name": "admin", "key": world.key, "calls": admin}]
    for scope, key in world.keys_without.items():
        calls = [
            {"id": f"scope:{name}", "name": name, "arguments": good_arguments(name, ids)}
            for name in SCOPED
            if scope in BY_NAME[name].scopes
        ]
        sessions.append({"name": f"without {scope.value}", "key": key, "calls": calls})
    sessions.append({"name": "reader", "key": world.reader, "calls": []})
    for session in sessions:
        for call in session["calls"]:
            call["arguments"] = local(call["arguments"], target)
    return sessions


async def drive(driver: Path, plan: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run the TypeScript driver over ``plan``; its results by session name."""
    path = workdir / "plan.json"
    path.write_text(json.dumps(plan))
    node = shutil.which("node") or "node"
    with anyio.fail_after(SESSION_SECONDS):
        done = await anyio.run_process([node, str(driver), str(path)], check=False)
    assert done.returncode == 0, done.stderr.decode()
    results: dict[str, Any] = json.loads(done.stdout)
    return {session["name"]: session for session in results["sessions"]}


def error_of(outcome: dict[str, Any]) -> dict[str, Any]:
    """A tool error as an agent reads it: the JSON text, and no structured content."""
    assert outcome["isError"] is True, outcome
    assert outcome["structured"] is None, outcome
    error: dict[str, Any] = json.loads(outcome["text"])
    assert error["message"]
    assert error["hint"]
    return error


def judge(sessions: dict[str, Any]) -> None:
    thrown = {
        call["id"]: call["thrown"]
        for session in sessions.values()
        for call in session["calls"]
        if "thrown" in call
    }
    assert thrown == {}, "the TypeScript SDK refused what Cadenza answered"
    admin = sessions["admin"]
    assert admin["tools"] == NAMES
    assert admin["listedBytes"] <= TOOLS_LIST_BYTES
    for call in admin["calls"]:
        kind, name = call["id"].split(":")[:2]
        if kind == "example":
            assert call["isError"] is False, (call["id"], call["text"])
            check_result(name, call["structured"])
        elif kind == "bad":
            error = error_of(call)
            assert error["code"] == "invalid_input", call
            assert BAD[name][1] in [p["field"] for p in error["errors"]], call
        else:
            assert error_of(call)["code"].endswith("not_found"), call
    for scope in SCOPES:
        session = sessions[f"without {scope.value}"]
        allowed = {a.name for a in REGISTRY if scope not in a.scopes}
        assert set(session["tools"]) == allowed
        for call in session["calls"]:
            assert error_of(call)["code"] == "permission_denied", call
    reader = {a.name for a in REGISTRY if a.scopes <= {Scope.JOBS_READ}}
    assert set(sessions["reader"]["tools"]) == reader


def check_result(name: str, structured: dict[str, Any]) -> None:
    action = BY_NAME[name]
    if action.streams:
        assert structured["media_type"] in action.streams
        for item in structured["items"]:
            action.output_model.model_validate(item)
    else:
        action.output_model.model_validate(structured)


def covered(sessions: dict[str, Any]) -> set[str]:
    """The kinds of call made on each tool, as "kind:name"."""
    return {
        ":".join(call["id"].split(":")[:2])
        for session in sessions.values()
        for call in session["calls"]
    }


def assert_every_tool_is_covered(sessions: dict[str, Any]) -> None:
    seen = covered(sessions)
    assert {f"example:{n}" for n in NAMES} <= seen
    assert {f"bad:{n}" for n in NAMES} <= seen
    assert {f"scope:{n}" for n in SCOPED} <= seen
    assert {f"missing:{n}" for n in WITH_IDS} <= seen


async def test_the_typescript_sdk_drives_every_tool_of_cadenza_serve_over_http(
    typescript_sdk: Path, live: Live, served: Served, target: Target
) -> None:
    world = await build_world(live, target)
    plan = {"transport": "http", "url": served.url, "sessions": plan_sessions(world, target)}
    sessions = await drive(typescript_sdk, plan, live.cwd)
    assert_every_tool_is_covered(sessions)
    judge(sessions)


async def test_the_typescript_sdk_drives_every_tool_of_cadenza_mcp_over_stdio(
    typescript_sdk: Path, live: Live, target: Target
) -> None:
    world = await build_world(live, target)
    plan = {
        "transport": "stdio",
        "command": CADENZA,
        "args": ["mcp"],
        "env": {**live.env, "PATH": os.environ.get("PATH", ""), "HOME": str(live.cwd)},
        "cwd": str(live.cwd),
        "sessions": plan_sessions(world, target),
    }
    sessions = await drive(typescript_sdk, plan, live.cwd)
    assert_every_tool_is_covered(sessions)
    judge(sessions)
