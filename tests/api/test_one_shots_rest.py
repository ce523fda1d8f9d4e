"""Several one-shots per endpoint over REST (#16, missing capability 3): reminders at
7, 14 and 21 days queue side by side, are listed in the endpoint's state and the
plan, are cancelled one by one, and the queue is bounded with a clear refusal."""

from __future__ import annotations

from datetime import timedelta

import httpx2
import pytest
from api_kit import Tenant, make_job_and_endpoint

from cadenza.actions.base import Services
from cadenza.domain.limits import MAX_ONE_SHOTS

pytestmark = pytest.mark.anyio


def rfc3339(value: object) -> str:
    return str(value).replace("+00:00", "Z").replace(" ", "T")


async def queue(client: httpx2.AsyncClient, alice: Tenant, ep: str, **body: object) -> str:
    answer = await client.post(
        f"/api/v1/endpoints/{ep}/hints/one-shot", json=body, headers=alice.headers
    )
    assert answer.status_code == 200, answer.text
    one_shot_id: str = answer.json()["one_shot_id"]
    return one_shot_id


async def shown(client: httpx2.AsyncClient, alice: Tenant, ep: str) -> list[dict[str, object]]:
    endpoint = await client.get(f"/api/v1/endpoints/{ep}", headers=alice.headers)
    queued: list[dict[str, object]] = endpoint.json()["hints"]["one_shots"]
    return queued


async def test_reminders_queue_side_by_side_and_cancel_one_by_one(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    now = services.clock.now()
    days = [21, 7, 14]
    ids = [await queue(client, alice, ep, delay_seconds=d * 86400, reason=f"day {d}") for d in days]
    listed = await shown(client, alice, ep)
    assert [s["reason"] for s in listed] == ["day 7", "day 14", "day 21"]
    assert [s["run_at"] for s in listed] == [rfc3339(now + timedelta(days=d)) for d in sorted(days)]
    assert {s["id"] for s in listed} == set(ids)
    explained = await client.get(f"/api/v1/endpoints/{ep}/schedule", headers=alice.headers)
    rules = [step["rule"] for step in explained.json()["plan"]["explanation"]]
    assert "one-shots-queued" in rules

    day14 = ids[2]
    cancelled = await client.request(
        "DELETE",
        f"/api/v1/endpoints/{ep}/hints/one-shot/{day14}",
        json={"reason": "not needed"},
        headers=alice.headers,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert [s["reason"] for s in await shown(client, alice, ep)] == ["day 7", "day 21"]
    audit = await client.get("/api/v1/audit", params={"target_id": ep}, headers=alice.headers)
    event = next(e for e in audit.json()["items"] if e["action"] == "cancel_one_shot")
    assert (event["changes"], event["reason"]) == ({"one_shot_id": day14}, "not needed")

    again = await client.delete(
        f"/api/v1/endpoints/{ep}/hints/one-shot/{day14}", headers=alice.headers
    )
    assert again.status_code == 404
    assert again.json()["code"] == "one_shot_not_found"

    cleared = await client.delete(f"/api/v1/endpoints/{ep}/hints", headers=alice.headers)
    assert cleared.status_code == 200, cleared.text
    assert await shown(client, alice, ep) == []


async def test_a_full_queue_refuses_one_more_with_409_and_keeps_every_one(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    for n in range(MAX_ONE_SHOTS):
        await queue(client, alice, ep, delay_seconds=3600 + n)
    refused = await client.post(
        f"/api/v1/endpoints/{ep}/hints/one-shot", json={"delay_seconds": 60}, headers=alice.headers
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "one_shot_queue_full"
    assert "cancel one" in refused.json()["detail"]
    assert len(await shown(client, alice, ep)) == MAX_ONE_SHOTS


async def test_run_now_joins_the_queue_and_can_be_cancelled(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    later = await queue(client, alice, ep, delay_seconds=3600)
    asked = await client.post(f"/api/v1/endpoints/{ep}/run-now", json={}, headers=alice.headers)
    assert asked.status_code == 200, asked.text
    run_now = asked.json()["one_shot_id"]
    listed = await shown(client, alice, ep)
    assert [(s["id"], s["run_now"]) for s in listed] == [(run_now, True), (later, False)]
    url = f"/api/v1/endpoints/{ep}/hints/one-shot/{run_now}"
    cancelled = await client.delete(url, headers=alice.headers)
    assert cancelled.json()["plan"]["source"] == "baseline-interval"
    assert [s["id"] for s in await shown(client, alice, ep)] == [later]
