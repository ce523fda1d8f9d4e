"""A world to call every action in over REST, and a way to call any action.

The valid and invalid inputs are the shared tables of ``catalogue_cases``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx2
from api_kit import Tenant, make_job_and_endpoint, record_run

from cadenza.actions import BY_NAME
from cadenza.actions.base import Services
from cadenza.domain.planning import Proposal, ProposalStatus, Verb
from cadenza.ids import new_id
from catalogue_cases import LATER, alert_ids


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
    queued = await client.post(
        f"/api/v1/endpoints/{endpoint_id}/hints/one-shot", json=LATER, headers=owner.headers
    )
    ids = {
        "one_shot_id": queued.json()["one_shot_id"],
        "job_id": job_id,
        "endpoint_id": endpoint_id,
        "run_id": runs[0].id,
        "key_id": key.json()["key"]["id"],
        "proposal_id": await pending_proposal(services, owner.tenant_id, endpoint_id),
        **await alert_ids(services, owner.tenant_id),
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
    arguments: dict[str, Any],
    headers: dict[str, str],
) -> httpx2.Response:
    """Call action ``name`` with tool-style ``arguments``: path ids taken from them
    (else from ``ids``), the rest as the query string (GET) or the JSON body."""
    action = BY_NAME[name]
    payload = dict(arguments)
    values = {p: payload.pop(p, ids.get(p)) for p in action.path_params}
    path = "/api/v1" + action.path.format(**values)
    if action.method == "GET":
        return await client.get(path, params=query(payload), headers=headers)
    return await client.request(action.method, path, json=payload, headers=headers)


def query(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON values as their text in a query string (``true``, not ``True``)."""
    return {k: json.dumps(v) if isinstance(v, bool) else v for k, v in payload.items()}
