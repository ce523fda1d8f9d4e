"""Every action of the registry over REST: each of its examples, bad input, input only a
lax parser would take, a missing scope and an unknown id.

The tables are shared with the MCP tests (``catalogue_cases``); a test checks that they
cover the whole registry, so a new action cannot slip past these tests.
"""

from __future__ import annotations

import httpx2
import pytest
from action_cases import World, build_world, call
from api_kit import Tenant, add_key

from cadenza.actions import BY_NAME
from cadenza.actions.base import Services
from cadenza.domain.identity import ALL_SCOPES, Scope
from catalogue_cases import (
    BAD,
    EXAMPLES,
    MISSING,
    NAMES,
    SCOPED,
    STRICT,
    WITH_IDS,
    example_arguments,
    good_arguments,
    with_ids,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def world(client: httpx2.AsyncClient, services: Services, alice: Tenant) -> World:
    return await build_world(client, services, alice)


def test_the_tables_cover_every_action_of_the_registry() -> None:
    assert set(BAD) == set(NAMES)
    assert {name for name, _ in EXAMPLES} == set(NAMES)


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
async def test_every_example_of_every_action_succeeds(
    client: httpx2.AsyncClient, world: World, name: str, index: int
) -> None:
    action = BY_NAME[name]
    arguments = with_ids(name, world.ids, example_arguments(name, index, world.ids))
    response = await call(client, name, world.ids, arguments, world.owner.headers)
    assert response.status_code == action.success_status, response.text
    if action.streams:
        assert response.headers["content-type"].split(";")[0] in action.streams
    else:
        action.output_model.model_validate(response.json())


@pytest.mark.parametrize("name", sorted(BAD))
async def test_every_action_answers_bad_input_with_a_422_naming_the_field(
    client: httpx2.AsyncClient, world: World, name: str
) -> None:
    arguments, field = BAD[name]
    response = await call(client, name, world.ids, arguments, world.owner.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert all(e["message"] for e in problem["errors"])


@pytest.mark.parametrize("case", sorted(STRICT))
async def test_input_only_a_lax_parser_would_take_is_refused(
    client: httpx2.AsyncClient, world: World, case: str
) -> None:
    name, arguments, field = STRICT[case]
    response = await call(client, name, world.ids, arguments, world.owner.headers)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("name", SCOPED)
async def test_every_action_refuses_a_key_without_its_scope(
    client: httpx2.AsyncClient, services: Services, world: World, name: str
) -> None:
    action = BY_NAME[name]
    others = ALL_SCOPES - action.scopes - {Scope.ADMIN}
    headers = await add_key(services, world.owner, frozenset(others))
    response = await call(client, name, world.ids, good_arguments(name, world.ids), headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("name", WITH_IDS)
async def test_every_action_with_an_id_answers_an_unknown_id_with_404(
    client: httpx2.AsyncClient, world: World, name: str
) -> None:
    response = await call(client, name, MISSING, good_arguments(name, MISSING), world.owner.headers)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"].endswith("not_found")


async def test_a_request_without_credentials_is_refused_with_401(
    client: httpx2.AsyncClient, world: World
) -> None:
    response = await call(client, "list_jobs", world.ids, {}, {})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
