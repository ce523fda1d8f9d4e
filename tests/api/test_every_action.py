"""Every action of the registry over REST: success, bad input, missing scope, unknown id.

The tables below hold one valid and one invalid input per action; a test checks
that they cover the whole registry, so a new action cannot slip past these tests.
"""

from __future__ import annotations

import httpx2
import pytest
from action_cases import BAD, GOOD, MISSING, NO_INPUT, SCOPED, WITH_IDS, World, build_world, call
from api_kit import Tenant, add_key

from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import Services
from cadenza.domain.identity import ALL_SCOPES, Scope

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(client: httpx2.AsyncClient, services: Services, alice: Tenant) -> World:
    return await build_world(client, services, alice)


def test_the_tables_cover_every_action_of_the_registry() -> None:
    names = {a.name for a in REGISTRY}
    assert set(GOOD) == names
    assert set(BAD) | NO_INPUT == names


@pytest.mark.parametrize("name", [a.name for a in REGISTRY])
async def test_every_action_succeeds_with_valid_input(
    client: httpx2.AsyncClient, world: World, name: str
) -> None:
    action = BY_NAME[name]
    response = await call(client, name, world.ids, GOOD[name], world.owner.headers)
    assert response.status_code == action.success_status, response.text
    if action.streams:
        assert response.headers["content-type"].split(";")[0] in action.streams
    else:
        action.output_model.model_validate(response.json())


@pytest.mark.parametrize("name", sorted(BAD))
async def test_every_action_answers_bad_input_with_a_422_naming_the_field(
    client: httpx2.AsyncClient, world: World, name: str
) -> None:
    payload, field = BAD[name]
    response = await call(client, name, world.ids, payload, world.owner.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert all(e["message"] for e in problem["errors"])


@pytest.mark.parametrize("name", SCOPED)
async def test_every_action_refuses_a_key_without_its_scope(
    client: httpx2.AsyncClient, services: Services, world: World, name: str
) -> None:
    action = BY_NAME[name]
    others = ALL_SCOPES - action.scopes - {Scope.ADMIN}
    headers = await add_key(services, world.owner, frozenset(others))
    response = await call(client, name, world.ids, GOOD[name], headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("name", WITH_IDS)
async def test_every_action_with_an_id_answers_an_unknown_id_with_404(
    client: httpx2.AsyncClient, world: World, name: str
) -> None:
    response = await call(client, name, MISSING, GOOD[name], world.owner.headers)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"].endswith("not_found")


async def test_a_request_without_credentials_is_refused_with_401(
    client: httpx2.AsyncClient, world: World
) -> None:
    response = await call(client, "list_jobs", world.ids, {}, {})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
