"""Query strings of GET actions: every way to get them wrong is one problem+json
with the offending field, however the route is served."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from api_kit import Tenant

pytestmark = pytest.mark.anyio


async def problem(client: httpx2.AsyncClient, tenant: Tenant, query: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/runs?{query}", headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == "invalid_input"
    assert body["title"] == "The input is invalid"
    return body


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("limit=0", ["limit"]),
        ("limit=many", ["limit"]),
        ("status=exploded", ["status"]),
        ("colour=red", ["colour"]),
        ("limit=0&status=exploded", ["status", "limit"]),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", ["body"]),
        ("since=yesterday", ["since"]),
    ],
)
async def test_an_invalid_query_names_each_offending_field(
    client: httpx2.AsyncClient, alice: Tenant, query: str, fields: list[str]
) -> None:
    body = await problem(client, alice, query)
    assert [e["field"] for e in body["errors"]] == fields
    assert body["detail"] == "; ".join(f"{e['field']}: {e['message']}" for e in body["errors"])


async def test_a_parameter_given_twice_is_refused_rather_than_one_value_guessed(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    body = await problem(client, alice, "cursor=a&cursor=b")
    assert body["errors"] == [{"field": "cursor", "message": "Give this parameter at most once."}]


async def test_valid_filters_with_empty_results_are_a_page_without_a_cursor(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    query = "status=failure&since=2026-01-01T00:00:00%2B02:00&limit=3&job_id=job_x"
    response = await client.get(f"/api/v1/runs?{query}", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}
