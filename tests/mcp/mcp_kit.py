"""Helpers shared by the MCP tests: tenants, recorded runs, tool-call assertions and the
tables of one valid and one invalid argument set per tool."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcp_types import CallToolResult
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

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
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET = b"mcp-test-server-secret-0123456789"
LONG_ID = "x" * 65
LONG_REASON = "r" * 1001
MISSING = {
    "job_id": "job_01kjq6psg0hsnnqppbnfezczwm",
    "endpoint_id": "ep_01kjq6psg0bz0nmmxd7gzhz90c",
    "run_id": "run_01kjq6psg0bz0nmmxd7gzhz90c",
    "key_id": "key_01kjq6psg03j132y95g9pxj08k",
    "proposal_id": "prp_01kjq6psg03j132y95g9pxj08k",
}


class CountingWaker:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


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
class Tenant:
    tenant_id: str
    key: str
    caller: Caller


@functools.cache
def _password_hash() -> str:
    # Argon2 is slow on purpose; tenants made here share one hash.
    return PasswordHash((Argon2Hasher(),)).hash("correct horse battery")


async def make_tenant(
    services: Services,
    email: str,
    scopes: frozenset[Scope] = frozenset({Scope.ADMIN}),
    kind: KeyKind = KeyKind.USER,
) -> Tenant:
    now = services.clock.now()
    user = User(new_id("usr", now), email, _password_hash(), now)
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
    """The structured error of a failed call: code, message, hint, field problems."""
    assert result.is_error, result.structured_content
    assert result.structured_content is not None
    error = result.structured_content
    assert error["code"]
    assert error["message"]
    assert error["hint"]
    assert result.content
    assert error["code"] in result.content[0].text
    return error


def endpoint_args(url: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "health",
        "request": {"method": "GET", "url": url},
        "baseline": {"interval_seconds": 300},
    }
    args.update(overrides)
    return args


def good_arguments(target: str) -> dict[str, dict[str, Any]]:
    """One valid argument set per tool, ids left out (the caller adds them)."""
    return {
        "create_job": {"name": "nightly", "tags": ["a"]},
        "get_job": {},
        "list_jobs": {"status": "active", "limit": 10},
        "update_job": {"name": "renamed", "reason": "clarity"},
        "archive_job": {"reason": "done"},
        "pause_job": {"until": "2026-03-03T00:00:00Z", "reason": "maintenance"},
        "resume_job": {},
        "add_endpoint": endpoint_args(target, name="second"),
        "get_endpoint": {},
        "list_endpoints": {"limit": 5},
        "update_endpoint": {"name": "renamed", "min_interval_seconds": 10},
        "delete_endpoint": {"reason": "obsolete"},
        "test_endpoint": {},
        "apply_interval_hint": {"interval_seconds": 30, "ttl_seconds": 600, "reason": "deploy"},
        "schedule_one_shot_run": {"delay_seconds": 60},
        "pause_or_resume_endpoint": {"until": "2026-03-03T00:00:00Z"},
        "clear_adaptive_hints": {},
        "reset_failure_count": {},
        "explain_schedule": {"preview": 3},
        "list_runs": {"status": "success", "limit": 5},
        "get_run_details": {},
        "summarize_endpoint_health": {"window_seconds": 3600},
        "list_audit_events": {"limit": 5},
        "export_runs": {"format": "jsonl"},
        "stream_run_events": {"max_seconds": 2},
        "create_api_key": {"name": "reader", "scopes": ["jobs:read"]},
        "list_api_keys": {},
        "revoke_api_key": {"reason": "leaked"},
        "describe_service_catalog": {},
        "whoami": {},
        "list_proposals": {"status": "pending"},
        "decide_proposal": {"decision": "approve", "reason": "looks right"},
        "list_planner_sessions": {"limit": 5},
        "get_endpoint_planner": {},
        "set_endpoint_planner": {"kind": "rules", "approval": True, "reason": "review first"},
        "apply_manifest": {
            "manifest": {"jobs": [{"name": "coded", "endpoints": [endpoint_args(target)]}]},
            "dry_run": True,
        },
        "export_manifest": {},
        "get_manifest_schema": {},
    }


def bad_arguments(target: str) -> dict[str, tuple[dict[str, Any], str]]:
    """One invalid argument set per tool and the field the error must name."""
    return {
        "create_job": ({"name": ""}, "name"),
        "get_job": ({"job_id": LONG_ID}, "job_id"),
        "list_jobs": ({"limit": 0}, "limit"),
        "update_job": ({"name": ""}, "name"),
        "archive_job": ({"reason": LONG_REASON}, "reason"),
        "pause_job": ({"until": "tomorrow"}, "until"),
        "resume_job": ({"reason": LONG_REASON}, "reason"),
        "add_endpoint": (
            endpoint_args(target, baseline={"interval_seconds": 0.5}),
            "baseline.interval_seconds",
        ),
        "get_endpoint": ({"endpoint_id": LONG_ID}, "endpoint_id"),
        "list_endpoints": ({"limit": 100_000}, "limit"),
        "update_endpoint": ({"jitter_seconds": -1}, "jitter_seconds"),
        "delete_endpoint": ({"reason": LONG_REASON}, "reason"),
        "test_endpoint": ({"reason": LONG_REASON}, "reason"),
        "apply_interval_hint": ({"interval_seconds": 0}, "interval_seconds"),
        "schedule_one_shot_run": ({"delay_seconds": -1}, "delay_seconds"),
        "pause_or_resume_endpoint": ({"until": "soon"}, "until"),
        "clear_adaptive_hints": ({"reason": LONG_REASON}, "reason"),
        "reset_failure_count": ({"reason": LONG_REASON}, "reason"),
        "explain_schedule": ({"preview": 51}, "preview"),
        "list_runs": ({"status": "exploded"}, "status"),
        "get_run_details": ({"run_id": LONG_ID}, "run_id"),
        "summarize_endpoint_health": ({"window_seconds": 1}, "window_seconds"),
        "list_audit_events": ({"since": "yesterday"}, "since"),
        "export_runs": ({"format": "xml"}, "format"),
        "stream_run_events": ({"max_seconds": 0}, "max_seconds"),
        "create_api_key": ({"name": "k", "scopes": []}, "scopes"),
        "list_api_keys": ({"limit": 0}, "limit"),
        "revoke_api_key": ({"key_id": LONG_ID}, "key_id"),
        "describe_service_catalog": ({"surprise": 1}, "surprise"),
        "whoami": ({"surprise": 1}, "surprise"),
        "list_proposals": ({"status": "maybe"}, "status"),
        "decide_proposal": ({"decision": "perhaps"}, "decision"),
        "list_planner_sessions": ({"limit": 0}, "limit"),
        "get_endpoint_planner": ({"endpoint_id": LONG_ID}, "endpoint_id"),
        "set_endpoint_planner": ({"kind": "oracle"}, "kind"),
        "apply_manifest": ({"manifest": {"version": 2}}, "manifest.version"),
        "export_manifest": ({"jobs": [""]}, "jobs.0"),
        "get_manifest_schema": ({"surprise": 1}, "surprise"),
    }
