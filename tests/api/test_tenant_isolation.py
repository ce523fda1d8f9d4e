"""Another tenant's resources are answered exactly like missing ones and never change.

Bob calls every action that takes an id with Alice's ids, then with ids that do not
exist; both answers must match (status, code, body shape, message once the id is
swapped), and Alice's state and audit log must be as before.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from action_cases import World, build_world, call
from api_kit import Tenant

from cadenza.actions.base import Services
from catalogue_cases import MISSING, WITH_IDS, good_arguments

pytestmark = pytest.mark.anyio


async def snapshot(client: httpx2.AsyncClient, world: World) -> dict[str, Any]:
    """Everything Alice can see about her resources."""
    headers, ids = world.owner.headers, world.ids
    paths = {
        "job": f"/api/v1/jobs/{ids['job_id']}",
        "endpoint": f"/api/v1/endpoints/{ids['endpoint_id']}",
        "endpoints": f"/api/v1/jobs/{ids['job_id']}/endpoints?include_archived=true",
        "run": f"/api/v1/runs/{ids['run_id']}",
        "runs": "/api/v1/runs",
        "audit": "/api/v1/audit?limit=500",
        "keys": "/api/v1/api-keys",
        "proposals": "/api/v1/proposals",
        "planner": f"/api/v1/endpoints/{ids['endpoint_id']}/planner",
    }
    state: dict[str, Any] = {}
    for name, path in paths.items():
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        state[name] = response.json()
    for key in state["keys"]["items"]:
        key.pop("last_used_at")  # Alice's own reads above touch her key
    return state


def normalised(response: httpx2.Response, ids: dict[str, str]) -> dict[str, Any]:
    body = response.json()
    body.pop("request_id", None)
    detail = body.get("detail", "")
    for name, value in ids.items():
        detail = detail.replace(value, f"<{name}>")
    body["detail"] = detail
    return {"status": response.status_code, "body": body}


@pytest.fixture
async def two_worlds(
    client: httpx2.AsyncClient, services: Services, alice: Tenant, bob: Tenant
) -> tuple[World, Tenant]:
    return await build_world(client, services, alice), bob


@pytest.mark.parametrize("name", WITH_IDS)
async def test_another_tenants_resource_is_answered_like_a_missing_one_and_left_unchanged(
    client: httpx2.AsyncClient, two_worlds: tuple[World, Tenant], name: str
) -> None:
    world, bob = two_worlds
    before = await snapshot(client, world)
    theirs = await call(client, name, world.ids, good_arguments(name, world.ids), bob.headers)
    missing = await call(client, name, MISSING, good_arguments(name, MISSING), bob.headers)
    assert theirs.status_code == 404
    assert normalised(theirs, world.ids) == normalised(missing, MISSING)
    assert await snapshot(client, world) == before


async def test_lists_and_exports_of_another_tenant_show_nothing_of_it(
    client: httpx2.AsyncClient, two_worlds: tuple[World, Tenant]
) -> None:
    world, bob = two_worlds
    ids, headers = world.ids, bob.headers
    for path, params in [
        ("/api/v1/jobs", {}),
        ("/api/v1/runs", {"endpoint_id": ids["endpoint_id"]}),
        ("/api/v1/runs", {"job_id": ids["job_id"]}),
        ("/api/v1/audit", {"target_id": ids["endpoint_id"]}),
        ("/api/v1/audit", {}),
        ("/api/v1/api-keys", {}),
    ]:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200
        items = response.json()["items"]
        assert all(ids["job_id"] not in str(item) for item in items), (path, items)
        assert all(world.owner.tenant_id not in str(item) for item in items)
    export = await client.get(
        "/api/v1/runs/export", params={"endpoint_id": ids["endpoint_id"]}, headers=headers
    )
    assert export.text.count("\n") == 1  # the CSV header only


async def test_a_filter_on_another_tenants_endpoint_matches_a_filter_on_a_missing_one(
    client: httpx2.AsyncClient, two_worlds: tuple[World, Tenant]
) -> None:
    world, bob = two_worlds
    theirs = await client.get(
        "/api/v1/runs", params={"endpoint_id": world.ids["endpoint_id"]}, headers=bob.headers
    )
    missing = await client.get(
        "/api/v1/runs", params={"endpoint_id": MISSING["endpoint_id"]}, headers=bob.headers
    )
    assert theirs.json() == missing.json() == {"items": [], "next_cursor": None}
