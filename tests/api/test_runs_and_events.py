"""Run history: details, health figures, exports and the live event stream."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import httpx2
import pytest
from api_kit import Tenant, make_job_and_endpoint, record_run

from cadenza.actions import BY_NAME, LineStream, invoke
from cadenza.actions.base import Context, Services
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import Actor, ActorKind, RunStatus
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio


async def run_sequence(services: Services, statuses: list[RunStatus]) -> None:
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    for status in statuses:
        # A failed run here retried twice within the run: three HTTP attempts.
        await record_run(
            services,
            status,
            duration_s=1.0 if status.ok else 3.0,
            http_attempts=1 if status.ok else 3,
        )
        clock.advance(timedelta(seconds=1))


async def test_health_counts_rates_percentiles_streaks_and_recovery_times(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, baseline={"interval_seconds": 60})
    ok, bad = RunStatus.SUCCESS, RunStatus.FAILURE
    await run_sequence(services, [ok, bad, bad, ok, ok, bad])
    health = (await client.get(f"/api/v1/endpoints/{ep}/health", headers=alice.headers)).json()
    assert health["runs"] == 6
    assert health["by_status"]["success"] == 3
    assert health["by_status"]["failure"] == 3
    assert health["success_rate"] == 0.5
    assert health["p50_duration_seconds"] == 1.0
    assert health["p95_duration_seconds"] == 3.0
    assert health["current_streak"] == {"status": "failure", "length": 1}
    assert health["longest_failure_streak"] == 2
    assert health["failure_episodes"] == 2
    assert health["mttr_seconds"] is not None
    assert health["mtbf_seconds"] is not None
    assert health["truncated"] is False


async def test_health_of_an_endpoint_without_runs_has_no_rates(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice)
    health = (await client.get(f"/api/v1/endpoints/{ep}/health", headers=alice.headers)).json()
    assert health["runs"] == 0
    assert health["success_rate"] is None
    assert health["cadence_source"] == "baseline-interval"


async def test_run_details_and_filters_by_status(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, baseline={"interval_seconds": 60})
    await run_sequence(services, [RunStatus.SUCCESS, RunStatus.FAILURE])
    failures = (
        await client.get(
            "/api/v1/runs", params={"endpoint_id": ep, "status": "failure"}, headers=alice.headers
        )
    ).json()["items"]
    assert [r["status"] for r in failures] == ["failure"]
    detail = await client.get(f"/api/v1/runs/{failures[0]['id']}", headers=alice.headers)
    assert detail.json()["http_status"] == 500
    assert detail.json()["duration_seconds"] == 3.0
    assert (detail.json()["http_attempts"], detail.json()["attempt"]) == (3, 1)


async def test_runs_export_as_csv_and_json_lines(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    await make_job_and_endpoint(client, alice, baseline={"interval_seconds": 60})
    await run_sequence(services, [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.SUCCESS])
    exported = await client.get("/api/v1/runs/export", headers=alice.headers)
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["status"] for r in rows] == ["success", "failure", "success"]
    assert [r["http_attempts"] for r in rows] == ["1", "3", "1"]
    lines = await client.get(
        "/api/v1/runs/export", params={"format": "jsonl", "max_rows": 2}, headers=alice.headers
    )
    parsed = [json.loads(line) for line in lines.text.splitlines()]
    assert len(parsed) == 2
    assert parsed[0]["status"] == "success"


async def test_the_event_stream_sends_new_runs_and_schedule_changes_only(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, baseline={"interval_seconds": 60})
    await run_sequence(services, [RunStatus.SUCCESS])  # history: not sent
    ctx = Context.for_caller(
        services, alice.tenant_id, Actor(ActorKind.USER, "u", "alice"), ALL_SCOPES
    )
    stream = await invoke(BY_NAME["stream_run_events"], ctx, {"max_seconds": 5})
    assert isinstance(stream, LineStream)
    assert stream.media_type == "text/event-stream"
    lines = stream.lines
    assert (await anext(lines)).startswith("retry: 1000")
    await run_sequence(services, [RunStatus.FAILURE])
    await client.post(
        f"/api/v1/endpoints/{ep}/hints/interval",
        json={"interval_seconds": 5, "reason": "watch"},
        headers=alice.headers,
    )
    run_event, change_event = await anext(lines), await anext(lines)
    assert "event: run" in run_event
    assert '"status":"failure"' in run_event
    assert "event: schedule_change" in change_event
    assert '"reason":"watch"' in change_event
    rest = [chunk async for chunk in lines]
    assert all("event:" not in chunk for chunk in rest)


async def test_the_event_stream_is_served_as_server_sent_events(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    response = await client.get("/api/v1/events", params={"max_seconds": 2}, headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: 1000")
