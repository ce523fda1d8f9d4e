"""The OpenAPI document: every operation says exactly what the server accepts and answers.

Each action's operation is written from the models that ``cadenza.api.routes``
validates and serializes with:

* path parameters, and for GET the query parameters, from the input model's fields
  (an optional query parameter is absent rather than null: a query string has no
  null);
* for the other methods, the JSON body: the input model without the path fields,
  with the action's examples;
* every response: the success status with the output model (or the stream's media
  types), and each problem+json status the API can answer.

Model-level rules that plain field types cannot say are in the models' own JSON
Schemas (``oneOf`` for one of ``cron``/``interval_seconds``, ``not`` for both
``run_at`` and ``delay_seconds``, required discriminators), so they appear here too.
Operations that are not actions (signing in and out) need no credentials, and
answer problem+json like the rest: FastAPI's default validation error is replaced,
and its 400 for a body that cannot be parsed is listed.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from cadenza.actions.base import AnyAction
from cadenza.api.errors import PROBLEM_MEDIA_TYPE, PROBLEMS, Problem

REF = "#/components/schemas/{model}"
ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429)
"""What any action can answer besides success: the rows of ``PROBLEMS``."""
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"


def document(schema: dict[str, Any], prefix: str, actions: tuple[AnyAction, ...]) -> None:
    """Rewrite ``schema`` (FastAPI's document) in place: see the module docstring."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    refs, defs = _model_schemas(actions)
    schemas.update(defs)
    problems = error_responses()
    for action in actions:
        operation = schema["paths"][prefix + action.path][action.method.lower()]
        _document_action(operation, action, refs, schemas, problems)
    documented = {(prefix + a.path, a.method.lower()) for a in actions}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (path, method) not in documented:
                _document_the_rest(operation, problems)
    for name in ("HTTPValidationError", "ValidationError"):
        if not _referenced(schema, f"#/components/schemas/{name}"):
            schemas.pop(name, None)


Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]
"""The ``$ref`` of each (model, mode) in the components."""


def _model_schemas(actions: tuple[AnyAction, ...]) -> tuple[Refs, dict[str, Any]]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for action in actions:
        models.append((action.input_model, "validation"))
        models.append((action.output_model, "serialization"))
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema(unique, ref_template=REF)
    found: Refs = {
        (model, mode): ref
        for (model, mode), ref in refs.items()
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    return found, dict(top.get("$defs", {}))


def error_responses() -> dict[str, Any]:
    titles: dict[int, str] = {}
    for status, title in PROBLEMS.values():
        titles.setdefault(status, title)
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}}
    return {
        str(status): {
            "description": titles.get(status, "The request is malformed"),
            "content": content,
        }
        for status in ERROR_STATUSES
    }


def _document_action(
    operation: dict[str, Any],
    action: AnyAction,
    refs: Refs,
    schemas: dict[str, Any],
    problems: dict[str, Any],
) -> None:
    model_ref = refs[(action.input_model, "validation")]
    model = schemas[model_ref["$ref"].rsplit("/", 1)[-1]]
    operation["parameters"] = [
        _path_parameter(name, model["properties"][name]) for name in action.path_params
    ]
    if action.method == "GET":
        operation["parameters"] += [
            _query_parameter(name, prop, name in model.get("required", []))
            for name, prop in model["properties"].items()
            if name not in action.path_params
        ]
    else:
        body = _body_schema(action, model, schemas, model_ref)
        if body is not None:
            operation["requestBody"] = body
    operation["responses"] = {
        str(action.success_status): _success(action, refs),
        **copy.deepcopy(problems),
    }


def _path_parameter(name: str, prop: dict[str, Any]) -> dict[str, Any]:
    schema = {k: v for k, v in prop.items() if k not in ("description", "examples")}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": prop.get("description", ""),
        "schema": schema,
    }


def _query_parameter(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    schema = _without_null(prop)
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required}
    if "description" in schema:
        parameter["description"] = schema.pop("description")
    examples = schema.pop("examples", None)
    if examples:
        parameter["example"] = examples[0]
    parameter["schema"] = schema
    return parameter


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """``prop`` minus its ``null`` alternative and ``null`` default."""
    schema = {k: v for k, v in prop.items() if not (k == "default" and v is None)}
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
    return schema


def _body_schema(
    action: AnyAction, model: dict[str, Any], schemas: dict[str, Any], model_ref: dict[str, Any]
) -> dict[str, Any] | None:
    fields = [name for name in model["properties"] if name not in action.path_params]
    if not fields:
        return None
    ref = model_ref
    if action.path_params:
        name = f"{model_ref['$ref'].rsplit('/', 1)[-1]}Body"
        body = copy.deepcopy(model)
        for param in action.path_params:
            body["properties"].pop(param)
        body["required"] = [r for r in body.get("required", []) if r not in action.path_params]
        if not body["required"]:
            del body["required"]
        schemas[name] = body
        ref = {"$ref": REF.format(model=name)}
    content: dict[str, Any] = {"schema": ref}
    examples = {
        f"example{i + 1}": {
            "summary": example.note or action.summary,
            "value": {k: v for k, v in example.arguments.items() if k not in action.path_params},
        }
        for i, example in enumerate(action.examples)
    }
    if examples:
        content["examples"] = examples
    required = bool([r for r in model.get("required", []) if r not in action.path_params])
    return {"required": required, "content": {"application/json": content}}


def _success(action: AnyAction, refs: Refs) -> dict[str, Any]:
    if action.streams:
        return {
            "description": f"A stream of {action.output_model.__name__} items.",
            "content": {media: {"schema": {"type": "string"}} for media in action.streams},
        }
    return {
        "description": action.summary,
        "content": {"application/json": {"schema": refs[(action.output_model, "serialization")]}},
    }


def _document_the_rest(operation: dict[str, Any], problems: dict[str, Any]) -> None:
    """A hand-written operation (module docstring): no credentials, problem+json."""
    operation["security"] = []
    responses = operation.setdefault("responses", {})
    validation = responses.get("422", {})
    schema = validation.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref") == _FASTAPI_VALIDATION:
        responses["422"] = copy.deepcopy(problems["422"])
    if "requestBody" in operation:
        responses.setdefault("400", copy.deepcopy(problems["400"]))
    for status in ("401", "429"):
        responses.setdefault(status, copy.deepcopy(problems[status]))


def _referenced(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_referenced(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_referenced(v, ref) for v in node)
    return False
