"""Runs in flight over REST: an ``overlap=allow`` endpoint's state counts them, and
``explain_schedule`` says so, and that a full endpoint's next slot waits for one to
end. The runs are held in flight by the store's own claim and launch path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx2
import pytest
from api_kit import Tenant, make_job_and_endpoint

from app_kit import land, launch_due
from cadenza.actions.base import Services
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio


async def shown(client: httpx2.AsyncClient, tenant: Tenant, path: str) -> Any:
    answer = await client.get(f"/api/v1{path}", headers=tenant.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_state_and_the_plan_count_the_runs_in_flight(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    allow = {"overlap": "allow", "max_in_flight": 2, "baseline": {"interval_seconds": 60}}
    job_id, ep = await make_job_and_endpoint(client, alice, **allow)
    assert (await shown(client, alice, f"/endpoints/{ep}"))["state"]["in_flight"] == 0
    first = await launch_due(services)
    assert (await shown(client, alice, f"/endpoints/{ep}"))["state"]["in_flight"] == 1
    step = (await shown(client, alice, f"/endpoints/{ep}/schedule"))["plan"]["explanation"][-1]
    assert step["rule"] == "in-flight"
    assert step["note"].startswith("1 of at most 2 runs in flight")

    await launch_due(services)
    (listed,) = (await shown(client, alice, f"/jobs/{job_id}/endpoints"))["items"]
    assert (listed["state"]["in_flight"], listed["state"]["running"]) == (2, False)
    explained = await shown(client, alice, f"/endpoints/{ep}/schedule")
    step = explained["plan"]["explanation"][-1]
    assert step["rule"] == "in-flight-full"
    assert step["note"] == "2 of at most 2 runs in flight: the next slot waits for one to end."
    # Its slot passes while it is full: overdue, and claimed only once a run ends.
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(seconds=90))
    explained = await shown(client, alice, f"/endpoints/{ep}/schedule")
    assert [s["rule"] for s in explained["plan"]["explanation"][-2:]] == [
        "in-flight-full",
        "overdue",
    ]
    assert "claimed once a run in flight ends" in explained["plan"]["explanation"][-1]["note"]

    await land(services, first)
    assert (await shown(client, alice, f"/endpoints/{ep}"))["state"]["in_flight"] == 1
