"""What schedule-changing actions do (SCHEDULING.md §2): replan at once, wake the
scheduler, audit with actor and reason, and respect archiving and secrets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from api_kit import CountingWaker, Tenant, endpoint_body, make_job_and_endpoint

from cadenza.actions import BY_NAME, invoke
from cadenza.actions.base import Context, Services
from cadenza.domain import errors
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import Actor, ActorKind
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio


async def get(client: httpx2.AsyncClient, path: str, tenant: Tenant, **params: Any) -> Any:
    response = await client.get(f"/api/v1{path}", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_interval_hint_moves_the_next_run_at_once_and_is_audited_with_its_reason(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    waker = services.waker
    assert isinstance(waker, CountingWaker)
    before = waker.wakes
    response = await client.post(
        f"/api/v1/endpoints/{ep}/hints/interval",
        json={"interval_seconds": 30, "ttl_seconds": 600, "reason": "deploy"},
        headers=alice.headers,
    )
    body = response.json()
    assert body["plan"]["source"] == "hint-interval"
    assert body["plan"]["next_run_at"] == "2026-03-02T12:00:30Z"
    assert body["previous_next_run_at"] == "2026-03-02T12:05:00Z"
    assert waker.wakes == before + 1
    endpoint = await get(client, f"/endpoints/{ep}", alice)
    assert endpoint["state"]["next_run_at"] == "2026-03-02T12:00:30Z"
    assert endpoint["hints"]["interval"]["reason"] == "deploy"
    audit = await get(client, "/audit", alice, target_id=ep)
    event = next(e for e in audit["items"] if e["action"] == "apply_interval_hint")
    assert event["reason"] == "deploy"
    assert event["actor"]["kind"] == "api_key"
    assert event["id"] == body["audit_event_id"]


async def test_clearing_hints_returns_to_the_baseline(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    await client.post(
        f"/api/v1/endpoints/{ep}/hints/one-shot", json={"delay_seconds": 10}, headers=alice.headers
    )
    assert (await get(client, f"/endpoints/{ep}", alice))["state"]["next_run_source"] == (
        "hint-one-shot"
    )
    cleared = await client.request(
        "DELETE", f"/api/v1/endpoints/{ep}/hints", json={}, headers=alice.headers
    )
    assert cleared.json()["plan"]["source"] == "baseline-interval"


async def test_pausing_a_job_replans_every_endpoint_and_resuming_restores_them(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    job, first = await make_job_and_endpoint(client, alice)
    second = await client.post(
        f"/api/v1/jobs/{job}/endpoints", json=endpoint_body(name="two"), headers=alice.headers
    )
    paused = await client.post(
        f"/api/v1/jobs/{job}/pause",
        json={"until": "2026-03-03T00:00:00Z", "reason": "window"},
        headers=alice.headers,
    )
    assert paused.json()["job"]["status"] == "paused"
    plans = {e["endpoint_id"]: e for e in paused.json()["endpoints"]}
    assert set(plans) == {first, second.json()["id"]}
    for endpoint_id in plans:
        state = (await get(client, f"/endpoints/{endpoint_id}", alice))["state"]
        assert state["next_run_at"] == "2026-03-03T00:00:00Z"
        assert state["next_run_source"] == "paused"
    resumed = await client.post(f"/api/v1/jobs/{job}/resume", json={}, headers=alice.headers)
    assert all(e["next_run_source"] == "baseline-interval" for e in resumed.json()["endpoints"])


async def test_archived_jobs_and_deleted_endpoints_refuse_schedule_changes(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    job, ep = await make_job_and_endpoint(client, alice)
    _, other = await make_job_and_endpoint(client, alice)
    archived = await client.request("DELETE", f"/api/v1/jobs/{job}", json={}, headers=alice.headers)
    assert archived.json()["job"]["status"] == "archived"
    assert (await get(client, f"/endpoints/{ep}", alice))["state"]["next_run_at"] is None
    await client.request("DELETE", f"/api/v1/endpoints/{other}", json={}, headers=alice.headers)
    for endpoint_id in (ep, other):
        refused = await client.post(
            f"/api/v1/endpoints/{endpoint_id}/hints/interval",
            json={"interval_seconds": 30},
            headers=alice.headers,
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "archived"
    again = await client.post(f"/api/v1/jobs/{job}/pause", json={}, headers=alice.headers)
    assert again.status_code == 409


async def test_secret_header_values_are_never_returned_and_survive_an_update_with_the_mask(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    request = {
        "url": "https://example.com/",
        "headers": [{"name": "Authorization", "value": "Bearer s3cr3t-token", "secret": True}],
    }
    _, ep = await make_job_and_endpoint(client, alice, request=request)
    shown = await client.get(f"/api/v1/endpoints/{ep}", headers=alice.headers)
    assert "s3cr3t-token" not in shown.text
    assert shown.json()["request"]["headers"][0]["value"] == "********"
    masked = shown.json()["request"]
    updated = await client.patch(
        f"/api/v1/endpoints/{ep}",
        json={"request": {**masked, "timeout_seconds": 5}},
        headers=alice.headers,
    )
    assert updated.status_code == 200
    async with services.store.transaction(readonly=True) as tx:
        stored = await tx.get_endpoint(alice.tenant_id, ep)
    assert stored.request.headers[0].value == "Bearer s3cr3t-token"
    for path in (f"/jobs/{stored.job_id}/endpoints", "/audit"):
        assert (
            "s3cr3t-token" not in (await client.get(f"/api/v1{path}", headers=alice.headers)).text
        )


async def test_an_update_replans_and_a_null_guardrail_removes_it(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, min_interval_seconds=60)
    changed = await client.patch(
        f"/api/v1/endpoints/{ep}",
        json={"baseline": {"interval_seconds": 60}, "min_interval_seconds": None},
        headers=alice.headers,
    )
    body = changed.json()
    assert body["min_interval_seconds"] is None
    assert body["state"]["next_run_at"] == "2026-03-02T12:01:00Z"


async def test_test_endpoint_sends_one_request_and_leaves_the_schedule_alone(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    before = (await get(client, f"/endpoints/{ep}", alice))["state"]
    result = await client.post(f"/api/v1/endpoints/{ep}/test", json={}, headers=alice.headers)
    assert result.json()["success"] is True
    assert result.json()["http_status"] == 200
    assert len(services.dispatcher.calls) == 1  # type: ignore[attr-defined]
    assert (await get(client, f"/endpoints/{ep}", alice))["state"] == before
    assert (await get(client, "/runs", alice))["items"] == []


async def test_the_planner_may_pause_only_for_a_bounded_time(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    planner = Context.for_caller(
        services, alice.tenant_id, Actor(ActorKind.PLANNER, "rules", "planner"), ALL_SCOPES
    )
    action = BY_NAME["pause_or_resume_endpoint"]
    with pytest.raises(errors.InvalidHint):
        await invoke(action, planner, {"endpoint_id": ep, "until": "2026-03-05T00:00:00Z"})
    done = await invoke(action, planner, {"endpoint_id": ep, "until": "2026-03-02T18:00:00Z"})
    assert done.plan.source.value == "paused"
    audit = await get(client, "/audit", alice, target_id=ep)
    pause = next(e for e in audit["items"] if e["action"] == "pause_endpoint")
    assert pause["actor"]["kind"] == "planner"


async def test_explain_schedule_previews_at_most_the_asked_number_of_runs(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    explained = await get(client, f"/endpoints/{ep}/schedule", alice, preview=4)
    assert explained["plan"]["explanation"][-1]["rule"] == "chosen"
    times = [p["next_run_at"] for p in explained["preview"]]
    assert times == [
        "2026-03-02T12:05:00Z",
        "2026-03-02T12:10:00Z",
        "2026-03-02T12:15:00Z",
        "2026-03-02T12:20:00Z",
    ]


async def test_lists_page_by_cursor_without_totals(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    for n in range(5):
        await client.post("/api/v1/jobs", json={"name": f"job-{n}"}, headers=alice.headers)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await get(client, "/jobs", alice, **params)
        assert set(page) == {"items", "next_cursor"}
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5


async def test_before_the_first_run_explain_names_the_stored_catch_up_time(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    baseline = {"interval_seconds": 300, "start_at": "2026-03-01T00:00:00Z"}
    _, ep = await make_job_and_endpoint(client, alice, baseline=baseline, jitter_seconds=3600)
    stored = (await get(client, f"/endpoints/{ep}", alice))["state"]["next_run_at"]
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    for _ in range(3):
        explained = await get(client, f"/endpoints/{ep}/schedule", alice)
        assert explained["stored_next_run_at"] == stored
        assert explained["plan"]["next_run_at"] == stored
        # Still before the stored time (the jitter depends on the random endpoint id).
        clock.advance((datetime.fromisoformat(stored) - clock.now()) / 4)


async def test_once_the_stored_time_has_passed_unclaimed_explain_names_it_as_overdue(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    stored = (await get(client, f"/endpoints/{ep}", alice))["state"]["next_run_at"]
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(datetime.fromisoformat(stored) - clock.now() + timedelta(minutes=7))
    explained = await get(client, f"/endpoints/{ep}/schedule", alice, preview=2)
    plan = explained["plan"]
    assert (plan["next_run_at"], plan["source"]) == (stored, "baseline-interval")
    assert plan["explanation"][-1]["rule"] == "overdue"
    assert "420 s ago" in plan["explanation"][-1]["note"]
    assert explained["preview"][0]["next_run_at"] == stored
