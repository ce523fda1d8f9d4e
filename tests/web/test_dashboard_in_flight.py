"""Runs in flight on the endpoint page: an ``overlap=allow`` endpoint shows how many
of its runs are in flight, and when it is full, that the next slot waits."""

from __future__ import annotations

import httpx2
import pytest
from web_kit import Person, make_endpoint, sign_in

from app_kit import land, launch_due
from cadenza.actions.base import Services

pytestmark = pytest.mark.anyio


async def test_the_endpoint_page_shows_the_runs_in_flight_and_a_full_endpoint(
    client: httpx2.AsyncClient, services: Services, alice: Person
) -> None:
    await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice, overlap="allow", max_in_flight=2)
    page = (await client.get(f"/endpoints/{endpoint_id}")).text
    assert 'id="in-flight"' not in page
    first = await launch_due(services)
    page = (await client.get(f"/endpoints/{endpoint_id}?part=live")).text
    assert "1 in flight</span> of at most 2</li>" in page
    assert '<span class="rule">in-flight</span>' in page
    await launch_due(services)
    page = (await client.get(f"/endpoints/{endpoint_id}")).text
    assert "2 in flight</span> of at most 2: the next slot waits for one to end</li>" in page
    assert '<span class="rule">in-flight-full</span>' in page
    await land(services, first)
    page = (await client.get(f"/endpoints/{endpoint_id}?part=live")).text
    assert "1 in flight</span> of at most 2</li>" in page
