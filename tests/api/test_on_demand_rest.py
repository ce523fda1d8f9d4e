"""On-demand endpoints over REST (#16, capability 1): created without a baseline, or
made so by ``update_endpoint``'s null (JSON Merge Patch), they run only when asked."""

from __future__ import annotations

import httpx2
import pytest
from api_kit import Tenant, endpoint_body, make_job_and_endpoint, record_run

from cadenza.actions.base import Services
from cadenza.domain.model import PlanSource

pytestmark = pytest.mark.anyio


async def test_without_a_baseline_it_runs_only_when_asked(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    body = endpoint_body()
    del body["baseline"]
    job = (await client.post("/api/v1/jobs", json={"name": "j"}, headers=alice.headers)).json()
    created = await client.post(
        f"/api/v1/jobs/{job['id']}/endpoints", json=body, headers=alice.headers
    )
    assert created.status_code == 201, created.text
    ep = created.json()
    assert ep["baseline"] is None
    assert (ep["state"]["next_run_at"], ep["state"]["next_run_source"]) == (None, "on-demand")
    explained = await client.get(f"/api/v1/endpoints/{ep['id']}/schedule", headers=alice.headers)
    plan = explained.json()["plan"]
    assert plan["next_run_at"] is None
    assert "runs only when asked" in plan["explanation"][0]["note"]
    assert await record_run(services) == []

    await client.post(f"/api/v1/endpoints/{ep['id']}/run-now", json={}, headers=alice.headers)
    (run,) = await record_run(services)
    assert run.source is PlanSource.RUN_NOW
    after = (await client.get(f"/api/v1/endpoints/{ep['id']}", headers=alice.headers)).json()
    assert (after["state"]["next_run_at"], after["state"]["next_run_source"]) == (
        None,
        "on-demand",
    )
    assert await record_run(services) == []


async def test_update_null_removes_the_baseline_and_a_baseline_restores_it(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, min_interval_seconds=60)
    url = f"/api/v1/endpoints/{ep}"
    removed = await client.patch(url, json={"baseline": None}, headers=alice.headers)
    assert removed.status_code == 200, removed.text
    shown = removed.json()
    assert (shown["baseline"], shown["state"]["next_run_at"]) == (None, None)
    assert shown["min_interval_seconds"] == 60
    kept = await client.patch(url, json={"tier": "alert"}, headers=alice.headers)
    assert kept.json()["baseline"] is None
    back = await client.patch(
        url, json={"baseline": {"interval_seconds": 120}}, headers=alice.headers
    )
    assert back.json()["state"]["next_run_source"] == "baseline-interval"
    audit = await client.get("/api/v1/audit", params={"target_id": ep}, headers=alice.headers)
    fields = [e["changes"].get("fields") for e in audit.json()["items"]]
    assert ["baseline"] in fields


async def test_the_openapi_schema_makes_the_baseline_optional(
    client: httpx2.AsyncClient,
) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    add = schemas["AddEndpointInput"]
    assert "baseline" not in add.get("required", [])
    assert "on demand" in add["properties"]["baseline"]["description"]
