"""add_endpoint refuses bad schedules and requests with a 422 naming the field, and
stores nothing."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from api_kit import Tenant, endpoint_body

pytestmark = pytest.mark.anyio

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "invalid cron",
        {"baseline": {"cron": "61 * * * *"}},
        "baseline.cron",
        "invalid_cron",
    ),
    (
        "unknown zone",
        {"baseline": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}},
        "baseline.timezone",
        "unknown_timezone",
    ),
    (
        "interval below one second",
        {"baseline": {"interval_seconds": 0.5}},
        "baseline.interval_seconds",
        "invalid_input",
    ),
    (
        "min above max",
        {
            "baseline": {"interval_seconds": 60},
            "min_interval_seconds": 600,
            "max_interval_seconds": 60,
        },
        "min_interval_seconds",
        "guardrails_inverted",
    ),
    (
        "non-http URL",
        {"request": {"url": "ftp://example.com/file"}},
        "request.url",
        "invalid_url",
    ),
    (
        "unsupported method",
        {"request": {"method": "TRACE", "url": "https://example.com/"}},
        "request.method",
        "invalid_input",
    ),
    (
        "both cron and interval",
        {"baseline": {"cron": "* * * * *", "interval_seconds": 60}},
        "baseline",
        "invalid_input",
    ),
    (
        "a bound on overlap with skip",
        {"max_in_flight": 3},
        "max_in_flight",
        "validation_error",
    ),
    (
        "a bound on overlap above the maximum",
        {"overlap": "allow", "max_in_flight": 99},
        "max_in_flight",
        "validation_error",
    ),
    (
        "an unknown overlap policy",
        {"overlap": "queue"},
        "overlap",
        "invalid_input",
    ),
    (
        "credentials in the URL",
        {"request": {"url": "https://user:pw@example.com/"}},
        "request.url",
        "invalid_url",
    ),
]


@pytest.fixture
async def job_id(client: httpx2.AsyncClient, alice: Tenant) -> str:
    response = await client.post("/api/v1/jobs", json={"name": "j"}, headers=alice.headers)
    return str(response.json()["id"])


@pytest.mark.parametrize(("label", "override", "field", "code"), CASES, ids=[c[0] for c in CASES])
async def test_add_endpoint_refuses_bad_input_with_the_field_and_a_message_and_stores_nothing(
    client: httpx2.AsyncClient,
    alice: Tenant,
    job_id: str,
    label: str,
    override: dict[str, Any],
    field: str,
    code: str,
) -> None:
    response = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints", json=endpoint_body(**override), headers=alice.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    errors = {e["field"]: e["message"] for e in problem["errors"]}
    assert field in errors, problem
    assert len(errors[field]) > 10  # a sentence for a person, not a bare code
    listed = await client.get(
        f"/api/v1/jobs/{job_id}/endpoints?include_archived=true", headers=alice.headers
    )
    assert listed.json()["items"] == []
    audit = await client.get("/api/v1/audit", headers=alice.headers)
    assert "add_endpoint" not in [e["action"] for e in audit.json()["items"]]


async def test_an_endpoint_shows_its_overlap_policy_and_update_endpoint_changes_it(
    client: httpx2.AsyncClient, alice: Tenant, job_id: str
) -> None:
    created = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints",
        json=endpoint_body(overlap="allow"),
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["overlap"], body["max_in_flight"]) == ("allow", 2)
    path = f"/api/v1/endpoints/{body['id']}"
    bounded = await client.patch(path, json={"max_in_flight": 5}, headers=alice.headers)
    assert (bounded.json()["overlap"], bounded.json()["max_in_flight"]) == ("allow", 5)
    back = await client.patch(path, json={"overlap": "skip"}, headers=alice.headers)
    assert (back.json()["overlap"], back.json()["max_in_flight"]) == ("skip", 1)


async def test_fastapi_validation_lists_every_offending_field(
    client: httpx2.AsyncClient, alice: Tenant, job_id: str
) -> None:
    body = endpoint_body(
        name="", jitter_seconds=-1, request={"url": "https://x.org", "timeout_seconds": 0}
    )
    response = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints", json=body, headers=alice.headers
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"name", "jitter_seconds", "request.timeout_seconds"} <= fields


async def test_malformed_json_is_a_422_problem(
    client: httpx2.AsyncClient, alice: Tenant, job_id: str
) -> None:
    response = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints",
        content=b"{not json",
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
