"""Input that cannot be sent as given is refused and nothing of it is stored: URLs
with spaces or control characters, header names that are not HTTP tokens, header
values with control characters, and cursors that no page ever handed out."""

from __future__ import annotations

from dataclasses import replace

import httpx2
import pytest
from api_kit import Tenant, endpoint_body, make_job_and_endpoint

from cadenza.actions import REGISTRY
from cadenza.actions.base import AnyAction, Services, validate_input
from cadenza.domain.model import Header, Method, Request

pytestmark = pytest.mark.anyio


async def refused(
    client: httpx2.AsyncClient, tenant: Tenant, request: dict[str, object], field: str
) -> None:
    job = await client.post("/api/v1/jobs", json={"name": "j"}, headers=tenant.headers)
    job_id = job.json()["id"]
    created = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints",
        json=endpoint_body(request=request),
        headers=tenant.headers,
    )
    assert created.status_code == 422, created.text
    fields = [e["field"] for e in created.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    listed = await client.get(f"/api/v1/jobs/{job_id}/endpoints", headers=tenant.headers)
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.com/",
        "http://example.com\r\n/",
        "http://example.com/\r\nX-Injected: 1",
        "http://example.com/a b",
        "http://ex\tample.com/",
        "http://example.com\x0b/",
        "http://example.com/\x7f",
    ],
)
async def test_urls_with_spaces_or_control_characters_are_refused(
    client: httpx2.AsyncClient, alice: Tenant, url: str
) -> None:
    await refused(client, alice, {"url": url}, "request.url")


@pytest.mark.parametrize(
    "name", ["X(Foo)", "X/Y", "X@Y", 'X"Y', "X[1]", "Ünicode", "X,Y", "X;Y", "{X}"]
)
async def test_header_names_that_are_not_http_tokens_are_refused(
    client: httpx2.AsyncClient, alice: Tenant, name: str
) -> None:
    request = {"url": "https://example.com/", "headers": [{"name": name, "value": "v"}]}
    await refused(client, alice, request, "request.headers")


@pytest.mark.parametrize("value", ["a\x00b", "a\x01b", "a\x1fb", "a\x7fb", "a\rb", "a\nb"])
async def test_header_values_with_control_characters_are_refused(
    client: httpx2.AsyncClient, alice: Tenant, value: str
) -> None:
    for secret in (False, True):
        request = {
            "url": "https://example.com/",
            "headers": [{"name": "X-Value", "value": value, "secret": secret}],
        }
        await refused(client, alice, request, "request.headers")


async def test_tokens_with_every_allowed_character_and_tabs_in_values_are_accepted(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    name = "X-!#$%&'*+.^_`|~09az"
    request = {"url": "https://example.com/", "headers": [{"name": name, "value": "a\tb é"}]}
    await make_job_and_endpoint(client, alice, request=request)


CURSOR_LISTS = [a for a in REGISTRY if "cursor" in a.input_model.model_fields]


@pytest.mark.parametrize("action", CURSOR_LISTS, ids=[a.name for a in CURSOR_LISTS])
@pytest.mark.parametrize("cursor", ["garbage", "job_short", "'; DROP TABLE runs; --", "%00"])
async def test_a_malformed_cursor_is_a_422_not_an_empty_page(
    client: httpx2.AsyncClient, alice: Tenant, action: AnyAction, cursor: str
) -> None:
    job_id, _ = await make_job_and_endpoint(client, alice)
    path = action.path.replace("{job_id}", job_id)
    response = await client.get(f"/api/v1{path}?cursor={cursor}", headers=alice.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]


async def test_a_cursor_handed_out_by_a_page_is_accepted(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    for name in ("a", "b", "c"):
        await client.post("/api/v1/jobs", json={"name": name}, headers=alice.headers)
    first = await client.get("/api/v1/jobs?limit=2", headers=alice.headers)
    cursor = first.json()["next_cursor"]
    second = await client.get(f"/api/v1/jobs?limit=2&cursor={cursor}", headers=alice.headers)
    assert [j["name"] for j in second.json()["items"]] == ["c"]


@pytest.mark.parametrize("action", CURSOR_LISTS, ids=[a.name for a in CURSOR_LISTS])
def test_an_explicit_null_cursor_starts_at_the_first_page(action: AnyAction) -> None:
    payload = {
        "cursor": None,
        **dict.fromkeys(action.path_params, "job_01hx0000000000000000000000"),
    }
    assert validate_input(action, payload).cursor is None


async def test_an_endpoint_stored_under_older_rules_stays_readable(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    job_id, endpoint_id = await make_job_and_endpoint(client, alice)
    legacy = Request(
        Method.GET,
        "https://example.com/",
        headers=(Header("X/Legacy", "a\x00b"), Header("X-Secret", "s\x01t", secret=True)),
    )
    async with services.store.transaction() as tx:
        stored = await tx.get_endpoint(alice.tenant_id, endpoint_id, for_update=True)
        await tx.update_endpoint(replace(stored, request=legacy))
    shown = await client.get(f"/api/v1/endpoints/{endpoint_id}", headers=alice.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["request"]["headers"][0]["name"] == "X/Legacy"
    listed = await client.get(f"/api/v1/jobs/{job_id}/endpoints", headers=alice.headers)
    assert listed.status_code == 200
