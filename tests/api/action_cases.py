"""Valid and invalid inputs for every action, and a way to call any action over REST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
from api_kit import Tenant, endpoint_body, make_job_and_endpoint, record_run

from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import Services
from cadenza.domain.planning import Proposal, ProposalStatus, Verb
from cadenza.ids import new_id

LONG_ID = "x" * 65
LONG_REASON = "r" * 1001

GOOD: dict[str, dict[str, Any]] = {
    "create_job": {"name": "nightly", "tags": ["a"]},
    "get_job": {},
    "list_jobs": {"status": "active", "limit": 10},
    "update_job": {"name": "renamed", "reason": "clarity"},
    "archive_job": {"reason": "done"},
    "pause_job": {"until": "2026-03-03T00:00:00Z", "reason": "maintenance"},
    "resume_job": {},
    "add_endpoint": endpoint_body(name="second"),
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
    "set_endpoint_planner": {"approval": True, "reason": "review first"},
    "apply_manifest": {
        "manifest": {"jobs": [{"name": "coded", "endpoints": [endpoint_body(name="coded")]}]},
        "reason": "as code",
    },
    "export_manifest": {"jobs": ["site"]},
    "get_manifest_schema": {},
}

# (input, the field the 422 must name); "@path" replaces the action's path id.
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "create_job": ({"name": ""}, "name"),
    "get_job": ({"@path": LONG_ID}, "job_id"),
    "list_jobs": ({"limit": 0}, "limit"),
    "update_job": ({"name": ""}, "name"),
    "archive_job": ({"reason": LONG_REASON}, "reason"),
    "pause_job": ({"until": "tomorrow"}, "until"),
    "resume_job": ({"reason": LONG_REASON}, "reason"),
    "add_endpoint": (
        endpoint_body(baseline={"interval_seconds": 0.5}),
        "baseline.interval_seconds",
    ),
    "get_endpoint": ({"@path": LONG_ID}, "endpoint_id"),
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
    "get_run_details": ({"@path": LONG_ID}, "run_id"),
    "summarize_endpoint_health": ({"window_seconds": 1}, "window_seconds"),
    "list_audit_events": ({"since": "yesterday"}, "since"),
    "export_runs": ({"format": "xml"}, "format"),
    "stream_run_events": ({"max_seconds": 0}, "max_seconds"),
    "create_api_key": ({"name": "k", "scopes": []}, "scopes"),
    "list_api_keys": ({"limit": 0}, "limit"),
    "revoke_api_key": ({"@path": LONG_ID}, "key_id"),
    "list_proposals": ({"status": "maybe"}, "status"),
    "decide_proposal": ({"decision": "perhaps"}, "decision"),
    "list_planner_sessions": ({"limit": 0}, "limit"),
    "get_endpoint_planner": ({"@path": LONG_ID}, "endpoint_id"),
    "set_endpoint_planner": ({"kind": "oracle"}, "kind"),
    "apply_manifest": (
        {"manifest": {"jobs": [{"name": "coded", "endpoints": [{"name": "e"}]}]}},
        "manifest.jobs.0.endpoints.0.request",
    ),
    "export_manifest": ({"jobs": [""]}, "jobs.0"),
}
NO_INPUT = {"describe_service_catalog", "whoami", "get_manifest_schema"}
MISSING = {
    "job_id": "job_01kjq6psg0hsnnqppbnfezczwm",
    "endpoint_id": "ep_01kjq6psg0bz0nmmxd7gzhz90c",
    "run_id": "run_01kjq6psg0bz0nmmxd7gzhz90c",
    "key_id": "key_01kjq6psg03j132y95g9pxj08k",
    "proposal_id": "prp_01kjq6psg03j132y95g9pxj08k",
}
WITH_IDS = [a.name for a in REGISTRY if a.path_params]
SCOPED = [a.name for a in REGISTRY if a.scopes]


@dataclass
class World:
    owner: Tenant
    ids: dict[str, str]


async def build_world(client: httpx2.AsyncClient, services: Services, owner: Tenant) -> World:
    job_id, endpoint_id = await make_job_and_endpoint(client, owner)
    runs = await record_run(services)
    key = await client.post(
        "/api/v1/api-keys", json={"name": "spare", "scopes": ["runs:read"]}, headers=owner.headers
    )
    ids = {
        "job_id": job_id,
        "endpoint_id": endpoint_id,
        "run_id": runs[0].id,
        "key_id": key.json()["key"]["id"],
        "proposal_id": await pending_proposal(services, owner.tenant_id, endpoint_id),
    }
    return World(owner, ids)


async def pending_proposal(services: Services, tenant_id: str, endpoint_id: str) -> str:
    """A planner proposal awaiting a person's decision (approval mode)."""
    assert services.planner is not None
    now = services.clock.now()
    proposal = Proposal(
        id=new_id("prp", now),
        tenant_id=tenant_id,
        session_id=new_id("pss", now),
        endpoint_id=endpoint_id,
        target_id=endpoint_id,
        verb=Verb.INTERVAL_HINT,
        arguments={"interval_seconds": 60, "ttl_seconds": 600, "reason": "failures"},
        status=ProposalStatus.PENDING,
        created_at=now,
    )
    await services.planner.insert_proposal(proposal)
    return proposal.id


async def call(
    client: httpx2.AsyncClient,
    name: str,
    ids: dict[str, str],
    payload: dict[str, Any],
    headers: dict[str, str],
) -> httpx2.Response:
    action = BY_NAME[name]
    payload = dict(payload)
    override = payload.pop("@path", None)
    values = {p: override if override is not None else ids[p] for p in action.path_params}
    path = "/api/v1" + action.path.format(**values)
    if action.method == "GET":
        return await client.get(path, params=payload, headers=headers)
    return await client.request(action.method, path, json=payload, headers=headers)
