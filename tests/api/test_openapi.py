"""Every registry action is on REST with its own models' schemas."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from api_kit import SECRET, START, CountingWaker
from pydantic import BaseModel

from cadenza.actions import REGISTRY
from cadenza.actions.base import AnyAction, Services
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.testing import FrozenClock, MemoryStore
from cadenza.testing.dispatch import FakeDispatcher


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as served (app.openapi() is what /openapi.json returns)."""
    clock = FrozenClock(START)
    services = Services(MemoryStore(), clock, CountingWaker(), FakeDispatcher(clock), SECRET)
    return create_app(services, Settings()).openapi()


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def fields_of(model: type[BaseModel], mode: str = "validation") -> tuple[set[str], set[str]]:
    """(property names, required names) of a model's JSON Schema, by alias."""
    schema = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
    return set(schema.get("properties", {})), set(schema.get("required", []))


def operation(spec: dict[str, Any], action: AnyAction) -> dict[str, Any]:
    path = spec["paths"].get(f"/api/v1{action.path}")
    assert path is not None, f"{action.name}: {action.path} is not in /openapi.json"
    op = path.get(action.method.lower())
    assert op is not None, f"{action.name}: no {action.method} on {action.path}"
    return dict(op)


@pytest.mark.parametrize("action", REGISTRY, ids=[a.name for a in REGISTRY])
def test_every_action_is_an_operation_with_its_input_model_as_parameters_or_body(
    spec: dict[str, Any], action: AnyAction
) -> None:
    op = operation(spec, action)
    assert op["operationId"] == action.name
    props, required = fields_of(action.input_model)
    path_params = set(action.path_params)
    params = {p["name"]: p for p in op.get("parameters", [])}
    assert {n for n, p in params.items() if p["in"] == "path"} == path_params
    rest, rest_required = props - path_params, required - path_params
    if action.method == "GET":
        query = {n for n, p in params.items() if p["in"] == "query"}
        assert query == rest
        assert {n for n in query if params[n].get("required")} == rest_required
        assert "requestBody" not in op
    elif rest:
        body = resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
        if "anyOf" in body:  # an optional body: the model or null
            body = resolve(spec, next(s for s in body["anyOf"] if s.get("type") != "null"))
        assert set(body["properties"]) == rest
        assert set(body.get("required", [])) == rest_required


@pytest.mark.parametrize("action", REGISTRY, ids=[a.name for a in REGISTRY])
def test_every_action_documents_its_output_model_and_its_problems(
    spec: dict[str, Any], action: AnyAction
) -> None:
    op = operation(spec, action)
    success = op["responses"][str(action.success_status)]
    if action.streams:
        assert set(success["content"]) == set(action.streams)
    else:
        schema = resolve(spec, success["content"]["application/json"]["schema"])
        props, required = fields_of(action.output_model, "serialization")
        assert schema["type"] == "object"
        assert set(schema.get("properties", {})) == props
        assert set(schema.get("required", [])) == required
    for status in ("401", "403", "404", "422", "429"):
        problem = op["responses"][status]["content"]["application/problem+json"]["schema"]
        assert resolve(spec, problem)["title"] == "Problem"


@pytest.mark.anyio
async def test_the_docs_page_and_the_document_are_served(client: httpx2.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text
    document = await client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.mark.anyio
async def test_an_undocumented_method_is_a_405_whose_allow_lists_every_documented_one(
    client: httpx2.AsyncClient, spec: dict[str, Any]
) -> None:
    for template, operations in spec["paths"].items():
        path = template.replace("{", "").replace("}", "")  # any id will do for a 405
        documented = sorted(m.upper() for m in operations)
        for method in sorted(set(METHODS) - set(documented)):
            response = await client.request(method, path)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == ", ".join(documented), (method, path)
            assert response.json()["code"] == "method_not_allowed"


def component(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


def test_a_baseline_is_documented_as_one_of_cron_or_interval(spec: dict[str, Any]) -> None:
    baseline = component(spec, "BaselineSpec")
    assert [sorted(option["required"]) for option in baseline["oneOf"]] == [
        ["cron"],
        ["interval_seconds"],
    ]


def test_a_one_shot_is_documented_as_never_both_run_at_and_delay(spec: dict[str, Any]) -> None:
    body = component(spec, "OneShotInputBody")
    assert sorted(body["not"]["required"]) == ["delay_seconds", "run_at"]


def test_a_rule_conditions_discriminator_is_required(spec: dict[str, Any]) -> None:
    for name in ("OutcomeIn", "MetricIn", "ResponseIn", "ResponseChangeIn", "SiblingIn"):
        assert "kind" in component(spec, name)["required"], name


def test_sign_in_and_out_need_no_credentials_and_answer_problems(spec: dict[str, Any]) -> None:
    for method, operation in spec["paths"]["/api/v1/session"].items():
        assert operation["security"] == [], method
        for status in ("401", "429"):
            assert "application/problem+json" in operation["responses"][status]["content"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_query_parameters_are_never_null(spec: dict[str, Any]) -> None:
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                assert "null" not in str(parameter["schema"]), parameter["name"]
