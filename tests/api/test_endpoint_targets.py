"""Where an endpoint may send its requests and its secrets: secret header values stay
bound to the origin they were entered for, and literal addresses the SSRF guard
refuses are refused when the endpoint is saved."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from api_kit import Tenant, add_key, endpoint_body, make_job_and_endpoint

from cadenza.actions.base import Services
from cadenza.adapters.http import AddressPolicy
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.domain.identity import Scope
from cadenza.domain.model import Header

pytestmark = pytest.mark.anyio
TOKEN = "Bearer s3cr3t-token-for-example"
SECRET_HEADERS = [
    {"name": "Authorization", "value": TOKEN, "secret": True},
    {"name": "X-Trace", "value": "visible", "secret": False},
]


async def with_secret(client: httpx2.AsyncClient, tenant: Tenant, url: str) -> str:
    request = {"url": url, "headers": SECRET_HEADERS}
    _, endpoint_id = await make_job_and_endpoint(client, tenant, request=request)
    return endpoint_id


async def move(
    client: httpx2.AsyncClient, endpoint_id: str, headers: dict[str, str], url: str
) -> httpx2.Response:
    """What a caller who cannot read the secret does: send back what it was shown,
    with another URL."""
    shown = await client.get(f"/api/v1/endpoints/{endpoint_id}", headers=headers)
    request = {**shown.json()["request"], "url": url}
    return await client.patch(
        f"/api/v1/endpoints/{endpoint_id}", json={"request": request}, headers=headers
    )


async def stored_headers(services: Services, tenant: Tenant, endpoint_id: str) -> list[Header]:
    async with services.store.transaction(readonly=True) as tx:
        return list((await tx.get_endpoint(tenant.tenant_id, endpoint_id)).request.headers)


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://attacker.example/collect",
        "http://example.com/",
        "https://example.com:8443/",
        "https://api.example.com/",
    ],
)
async def test_moving_to_another_origin_drops_masked_secrets(
    client: httpx2.AsyncClient, services: Services, alice: Tenant, elsewhere: str
) -> None:
    endpoint_id = await with_secret(client, alice, "https://example.com/hook")
    writer = await add_key(services, alice, frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE}))
    moved = await move(client, endpoint_id, writer, elsewhere)
    assert moved.status_code == 200, moved.text
    headers = await stored_headers(services, alice, endpoint_id)
    assert [(h.name, h.value) for h in headers] == [("X-Trace", "visible")]
    assert TOKEN not in moved.text


async def test_the_audit_entry_records_the_old_and_new_url_and_what_was_dropped(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    endpoint_id = await with_secret(client, alice, "https://example.com/hook")
    await move(client, endpoint_id, alice.headers, "https://attacker.example/collect")
    audit = await client.get(
        "/api/v1/audit", params={"target_id": endpoint_id}, headers=alice.headers
    )
    event = next(e for e in audit.json()["items"] if e["action"] == "update_endpoint")
    assert event["changes"]["url"] == {
        "from": "https://example.com/hook",
        "to": "https://attacker.example/collect",
    }
    assert event["changes"]["dropped_secret_headers"] == ["Authorization"]


@pytest.mark.parametrize(
    "same_place",
    ["https://example.com/other/path?q=1", "https://EXAMPLE.com:443/hook", "https://example.com"],
)
async def test_staying_at_the_origin_keeps_masked_secrets(
    client: httpx2.AsyncClient, services: Services, alice: Tenant, same_place: str
) -> None:
    endpoint_id = await with_secret(client, alice, "https://example.com/hook")
    assert (await move(client, endpoint_id, alice.headers, same_place)).status_code == 200
    headers = await stored_headers(services, alice, endpoint_id)
    assert (headers[0].name, headers[0].value, headers[0].secret) == ("Authorization", TOKEN, True)


async def test_a_secret_given_again_travels_to_the_new_origin(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    endpoint_id = await with_secret(client, alice, "https://example.com/hook")
    request: dict[str, Any] = {
        "url": "https://new.example/hook",
        "headers": [{"name": "Authorization", "value": "Bearer new-one", "secret": True}],
    }
    changed = await client.patch(
        f"/api/v1/endpoints/{endpoint_id}", json={"request": request}, headers=alice.headers
    )
    assert changed.status_code == 200
    headers = await stored_headers(services, alice, endpoint_id)
    # A merge patch (#16.5): the header not named stays.
    assert [(h.name, h.value) for h in headers] == [
        ("Authorization", "Bearer new-one"),
        ("X-Trace", "visible"),
    ]


async def test_a_mask_with_nothing_behind_it_is_refused_never_stored_or_sent(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    request = {
        "url": "https://example.com/",
        "headers": [{"name": "X-Key", "value": "********", "secret": True}],
    }
    job = await client.post("/api/v1/jobs", json={"name": "j"}, headers=alice.headers)
    body = endpoint_body(request=request)
    refused = await client.post(
        f"/api/v1/jobs/{job.json()['id']}/endpoints", json=body, headers=alice.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "request.headers.0.value"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:8080/",
        "http://[64:ff9b::a00:1]/",
        "http://2130706433/",
        "http://metadata.google.internal/",
    ],
)
async def test_a_refused_literal_address_is_refused_when_saved_naming_the_allowlist(
    client: httpx2.AsyncClient, alice: Tenant, url: str
) -> None:
    job = await client.post("/api/v1/jobs", json={"name": "j"}, headers=alice.headers)
    job_id = job.json()["id"]
    body = endpoint_body(request={"url": url})
    created = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints", json=body, headers=alice.headers
    )
    assert created.status_code == 422, created.text
    assert created.json()["code"] == "unsafe_target"
    assert "CADENZA_SSRF_ALLOWLIST" in created.json()["detail"]
    _, endpoint_id = await make_job_and_endpoint(client, alice)
    updated = await client.patch(
        f"/api/v1/endpoints/{endpoint_id}",
        json={"request": {"url": url}},
        headers=alice.headers,
    )
    assert updated.status_code == 422
    assert "CADENZA_SSRF_ALLOWLIST" in updated.json()["detail"]


async def test_host_names_are_left_to_the_check_at_each_connection(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    # A name may resolve anywhere later; the resolver checks every connection.
    await make_job_and_endpoint(client, alice, request={"url": "http://internal.example/"})


async def test_an_allowlisted_literal_address_is_accepted(
    services: Services, alice: Tenant
) -> None:
    opened = Services(
        store=services.store,
        clock=services.clock,
        waker=services.waker,
        dispatcher=services.dispatcher,
        secret_key=services.secret_key,
        targets=AddressPolicy.from_allowlist(["10.0.0.0/8"]),
    )
    transport = httpx2.ASGITransport(app=create_app(opened, Settings()))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await make_job_and_endpoint(client, alice, request={"url": "http://10.0.0.5/"})
