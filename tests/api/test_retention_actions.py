"""get/set_retention_policy over REST: replaced whole, audited, admin-only to set."""

from __future__ import annotations

import httpx2
import pytest
from api_kit import Tenant, add_key

from cadenza.actions.base import Services
from cadenza.domain.identity import Scope

pytestmark = pytest.mark.anyio
URL = "/api/v1/retention-policy"


async def test_a_policy_is_set_read_back_replaced_and_audited(
    client: httpx2.AsyncClient, alice: Tenant, bob: Tenant
) -> None:
    empty = (await client.get(URL, headers=alice.headers)).json()
    assert empty == {
        "run_days": None,
        "runs_per_endpoint": None,
        "audit_days": None,
        "updated_at": None,
    }
    body = {"run_days": 30, "runs_per_endpoint": 500, "audit_days": 365, "reason": "storage"}
    answer = await client.put(URL, json=body, headers=alice.headers)
    assert answer.status_code == 200, answer.text
    assert (await client.get(URL, headers=alice.headers)).json()["runs_per_endpoint"] == 500
    await client.put(URL, json={"audit_days": 90}, headers=alice.headers)
    now = (await client.get(URL, headers=alice.headers)).json()
    assert (now["run_days"], now["runs_per_endpoint"], now["audit_days"]) == (None, None, 90)
    assert (await client.get(URL, headers=bob.headers)).json()["audit_days"] is None
    audit = (await client.get("/api/v1/audit", headers=alice.headers)).json()["items"]
    assert [e["action"] for e in audit][:2] == ["set_retention_policy"] * 2


async def test_setting_retention_needs_admin_and_sane_limits(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    writer = await add_key(services, alice, frozenset({Scope.JOBS_WRITE, Scope.RUNS_READ}))
    assert (await client.put(URL, json={"run_days": 1}, headers=writer)).status_code == 403
    assert (await client.get(URL, headers=writer)).status_code == 200
    refused = await client.put(URL, json={"runs_per_endpoint": 0}, headers=alice.headers)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
