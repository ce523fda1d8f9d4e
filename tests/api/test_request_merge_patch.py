"""``update_endpoint``'s ``request`` is a JSON Merge Patch (RFC 7396) of the stored
request (#16.5): what is left out stays, nested objects merge, headers are matched by
name (a null value removes one), and a ``********`` placeholder with no stored secret
is refused, never stored or sent."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from api_kit import Tenant, make_job_and_endpoint

from cadenza.actions.base import Services
from cadenza.domain.model import Request

pytestmark = pytest.mark.anyio

STORED = {
    "url": "https://example.com/hook",
    "headers": [
        {"name": "Authorization", "value": "Bearer s3cr3t", "secret": True},
        {"name": "X-Trace", "value": "1"},
    ],
    "timeout_seconds": 5,
    "retry": {"max_attempts": 3, "backoff_seconds": 1},
}


async def stored_request(services: Services, tenant: Tenant, endpoint_id: str) -> Request:
    async with services.store.transaction(readonly=True) as tx:
        return (await tx.get_endpoint(tenant.tenant_id, endpoint_id)).request


async def patch(
    client: httpx2.AsyncClient, tenant: Tenant, endpoint_id: str, request: dict[str, Any]
) -> httpx2.Response:
    return await client.patch(
        f"/api/v1/endpoints/{endpoint_id}", json={"request": request}, headers=tenant.headers
    )


async def test_a_partial_request_changes_only_what_it_names(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, request=STORED)
    changed = await patch(client, alice, ep, {"headers": [{"name": "x-trace", "value": "2"}]})
    assert changed.status_code == 200, changed.text
    request = await stored_request(services, alice, ep)
    assert [(h.name, h.value, h.secret) for h in request.headers] == [
        ("Authorization", "Bearer s3cr3t", True),
        ("x-trace", "2", False),
    ]
    assert (request.url, request.timeout.total_seconds()) == (STORED["url"], 5)
    assert request.retry.max_attempts == 3


async def test_a_nested_object_merges_field_by_field(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, request=STORED)
    changed = await patch(client, alice, ep, {"retry": {"backoff_seconds": 2}})
    assert changed.status_code == 200, changed.text
    request = await stored_request(services, alice, ep)
    assert (request.retry.max_attempts, request.retry.backoff.total_seconds()) == (3, 2)
    assert len(request.headers) == 2


async def test_a_null_header_value_removes_that_header(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, request=STORED)
    changed = await patch(client, alice, ep, {"headers": [{"name": "X-Trace", "value": None}]})
    assert changed.status_code == 200, changed.text
    request = await stored_request(services, alice, ep)
    assert [h.name for h in request.headers] == ["Authorization"]


async def test_a_placeholder_with_no_stored_secret_is_refused(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    _, ep = await make_job_and_endpoint(client, alice, request=STORED)
    masked = {"name": "X-Key", "value": "********", "secret": True}
    refused = await patch(client, alice, ep, {"headers": [masked]})
    assert refused.status_code == 422, refused.text
    assert "X-Key" in refused.json()["detail"]
    assert [h.name for h in (await stored_request(services, alice, ep)).headers] == [
        "Authorization",
        "X-Trace",
    ]
