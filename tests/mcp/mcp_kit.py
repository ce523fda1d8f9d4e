"""Helpers shared by the MCP tests: tenants, recorded runs and tool-call assertions.
The argument tables are shared with the REST tests (``catalogue_cases``)."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
from anyio.abc import Process
from mcp_types import CallToolResult, TextContent

from app_kit import START as START
from app_kit import CountingWaker as CountingWaker
from app_kit import password_hash
from cadenza.actions.base import Services
from cadenza.actions.identity import Caller, caller_for_key, create_user, issue_api_key
from cadenza.config import Settings
from cadenza.domain.identity import KeyKind, Scope, User
from cadenza.domain.model import Run, RunStatus
from cadenza.domain.planning import Proposal, ProposalStatus, Verb
from cadenza.ids import new_id
from cadenza.ports import Completion
from cadenza.testing import FrozenClock

LOOPBACK = "127.0.0.1"
CADENZA = shutil.which("cadenza", path=str(Path(sys.executable).parent)) or "cadenza"
"""The ``cadenza`` command of this environment."""
SECRET = b"mcp-test-server-secret-0123456789"


TOOLS_LIST_BYTES = 60_000
"""The most an agent's context pays for the whole tool list (all scopes)."""


@dataclass
class Target:
    """A loopback HTTP server that answers 200 with a small JSON body to anything."""

    base: str = ""
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return self.base + path


@dataclass
class Live:
    """A migrated SQLite file for a Cadenza subprocess, the environment that points the
    subprocess at it, and this process's own services over the same file."""

    settings: Settings
    services: Services
    env: dict[str, str]
    cwd: Path


@dataclass
class Served:
    """A ``cadenza serve`` process and the URL of its MCP endpoint."""

    url: str
    process: Process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


async def wait_until_ready(url: str, process: Process) -> None:
    """Poll until the server answers (any status) or the process dies."""
    async with httpx2.AsyncClient(timeout=2) as http:
        while True:
            assert process.returncode is None, "cadenza serve exited during startup"
            try:
                await http.get(url)
                return
            except httpx2.TransportError:
                await anyio.sleep(0.2)


@dataclass
class Tenant:
    tenant_id: str
    key: str
    caller: Caller


async def make_tenant(
    services: Services,
    email: str,
    scopes: frozenset[Scope] = frozenset({Scope.ADMIN}),
    kind: KeyKind = KeyKind.USER,
) -> Tenant:
    now = services.clock.now()
    user = User(new_id("usr", now), email, password_hash(), now)
    async with services.store.transaction() as tx:
        await tx.insert_user(user)
    return await add_key(services, user.tenant_id, scopes, kind)


async def add_key(
    services: Services, tenant_id: str, scopes: frozenset[Scope], kind: KeyKind = KeyKind.USER
) -> Tenant:
    key, plaintext = await issue_api_key(
        services.store, services.clock, services.keyring, tenant_id, "mcp", scopes, kind, None
    )
    return Tenant(tenant_id, plaintext, caller_for_key(key))


async def record_run(services: Services) -> list[Run]:
    """Let every due endpoint run once, successfully, through the store's claim path
    (a frozen clock is first moved to the earliest due time)."""
    clock = services.clock
    due = await services.store.next_due_at()
    if isinstance(clock, FrozenClock) and due is not None and due > clock.now():
        clock.set(due)
    now = clock.now()
    claims = await services.store.claim_due(
        "w1", now, lookahead=timedelta(seconds=1), limit=100, lease_margin=timedelta(seconds=30)
    )
    runs = [
        Run(
            id=new_id("run", now),
            endpoint_id=c.endpoint.id,
            job_id=c.endpoint.job_id,
            tenant_id=c.endpoint.tenant_id,
            scheduled_for=c.scheduled_for,
            started_at=now,
            finished_at=now + timedelta(seconds=0.2),
            status=RunStatus.SUCCESS,
            source=c.source,
            attempt=c.attempt,
            http_status=200,
            worker_id="w1",
        )
        for c in claims
    ]
    await services.store.complete(
        "w1", [Completion(c, r) for c, r in zip(claims, runs, strict=True)], now
    )
    return runs


async def insert_proposal(services: Services, tenant_id: str, endpoint_id: str) -> str:
    """A pending planner proposal (an interval hint) for the endpoint; returns its id."""
    assert services.planner is not None
    now = services.clock.now()
    proposal = Proposal(
        id=new_id("prp", now),
        tenant_id=tenant_id,
        session_id=new_id("pls", now),
        endpoint_id=endpoint_id,
        target_id=endpoint_id,
        verb=Verb.INTERVAL_HINT,
        arguments={"interval_seconds": 60.0, "ttl_seconds": 600.0, "reason": "planner"},
        status=ProposalStatus.PENDING,
        created_at=now,
    )
    await services.planner.insert_proposal(proposal)
    return proposal.id


async def make_agent(live: Live, email: str, scopes: frozenset[Scope]) -> tuple[str, str]:
    """A new user (and tenant) with an agent key, made as an operator would, through
    the identity functions; returns the tenant id and the key's plaintext."""
    s = live.services
    user = await create_user(s.store, s.clock, email, "correct horse battery", is_admin=False)
    _, key = await issue_api_key(
        s.store, s.clock, s.keyring, user.tenant_id, "agent", scopes, KeyKind.AGENT, None
    )
    return user.tenant_id, key


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful call (fails the test on a tool error)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def tool_error(result: CallToolResult) -> dict[str, Any]:
    """The error of a failed call, read as an agent reads it: the JSON text block with
    code, message, hint and field problems. It carries no structured content, which
    would have to match the tool's output schema."""
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    [block] = result.content
    assert isinstance(block, TextContent)
    error: dict[str, Any] = json.loads(block.text)
    assert error["code"]
    assert error["message"]
    assert error["hint"]
    return error
