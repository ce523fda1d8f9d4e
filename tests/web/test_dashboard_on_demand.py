"""On-demand endpoints on the dashboard (#16, capability 1): the add form offers a
baseline unless unticked, the edit form removes one, and the endpoint page says that
it runs only when asked."""

from __future__ import annotations

import httpx2
import pytest
from web_kit import Person, control, make_endpoint, sign_in

pytestmark = pytest.mark.anyio


async def shown(client: httpx2.AsyncClient, person: Person, endpoint_id: str) -> dict:
    answer = await client.get(f"/api/v1/endpoints/{endpoint_id}", headers=person.headers)
    return answer.json()


async def test_the_add_form_starts_with_a_baseline_and_unticked_adds_an_on_demand_one(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    job_id, _ = await make_endpoint(client, alice)
    job_page = (await client.get(f"/jobs/{job_id}")).text
    assert 'name="baseline" value="on" checked' in job_page
    answer = await control(
        client,
        "add_endpoint",
        token,
        {
            "job_id": job_id,
            "name": "page-on-call",
            "request.url": "https://example.com/page",
            "baseline": "off",
            "baseline.interval_seconds": "30",
        },
    )
    endpoint_id = answer.headers["hx-redirect"].rsplit("/", 1)[1]
    endpoint = await shown(client, alice, endpoint_id)
    assert (endpoint["baseline"], endpoint["state"]["next_run_source"]) == (None, "on-demand")
    page = (await client.get(f"/endpoints/{endpoint_id}")).text
    assert "on demand: runs only when asked" in page
    assert '<p class="big" id="next-run-at">On demand</p>' in page
    assert "runs only when asked (one-shot, run-now, hint)" in page


async def test_unticking_the_baseline_in_the_edit_form_makes_it_on_demand(
    client: httpx2.AsyncClient, alice: Person
) -> None:
    token = await sign_in(client, alice)
    _, endpoint_id = await make_endpoint(client, alice)
    form = (await client.get(f"/controls/edit_endpoint?endpoint_id={endpoint_id}")).text
    assert 'name="baseline" value="on" checked' in form
    fields = {"endpoint_id": endpoint_id, "baseline": "off", "reason": "alerts only"}
    answer = await control(client, "edit_endpoint", token, fields)
    assert answer.status_code == 200, answer.text
    endpoint = await shown(client, alice, endpoint_id)
    assert (endpoint["baseline"], endpoint["state"]["next_run_at"]) == (None, None)
    # The form shown again (keep_values) stays unticked; saving it keeps it on demand.
    assert 'name="baseline" value="on" checked' not in answer.text
