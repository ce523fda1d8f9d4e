"""``trigger_run`` (#16, run now): one recorded run as soon as possible with source
``run-now`` and the caller as actor; it does not override a pause."""

from __future__ import annotations

import httpx2
import pytest
from api_kit import Tenant, make_job_and_endpoint, record_run

from cadenza.actions.base import Services
from cadenza.domain.model import PlanSource

pytestmark = pytest.mark.anyio


async def test_run_now_runs_once_at_once_with_its_own_source_and_actor(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    now = services.clock.now()
    asked = await client.post(
        f"/api/v1/endpoints/{ep}/run-now", json={"reason": "check"}, headers=alice.headers
    )
    assert asked.status_code == 200, asked.text
    plan = asked.json()["plan"]
    assert (plan["source"], plan["explanation"][-2]["rule"]) == ("run-now", "run-now")
    assert plan["next_run_at"] == now.isoformat().replace("+00:00", "Z")
    (run,) = await record_run(services)
    assert (run.source, run.scheduled_for) == (PlanSource.RUN_NOW, now)
    shown = (await client.get(f"/api/v1/endpoints/{ep}", headers=alice.headers)).json()
    assert shown["state"]["next_run_source"] == "baseline-interval"
    audit = await client.get("/api/v1/audit", params={"target_id": ep}, headers=alice.headers)
    event = next(e for e in audit.json()["items"] if e["action"] == "trigger_run")
    assert (event["reason"], event["actor"]["kind"]) == ("check", "api_key")


async def test_run_now_does_not_override_a_pause(client: httpx2.AsyncClient, alice: Tenant) -> None:
    job, ep = await make_job_and_endpoint(client, alice)
    paused = await client.post(f"/api/v1/jobs/{job}/pause", json={}, headers=alice.headers)
    assert paused.status_code == 200, paused.text
    refused = await client.post(f"/api/v1/endpoints/{ep}/run-now", json={}, headers=alice.headers)
    assert refused.status_code == 409
    assert "resume it first" in refused.json()["detail"]
