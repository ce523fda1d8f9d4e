"""REST routes generated from the action registry; no route is written by hand.

For each action: path parameters are the ``{names}`` in its path (fields of its
input model); GET actions take the other fields as query parameters, the rest as a
JSON body. Each request is handled the same way:

1. the caller is authenticated and its scopes checked, before the input is read;
2. the path, the query string (decoded by each field's type, ``decode_text``) or
   the JSON body are gathered into one payload and validated once, strictly, by
   the action's input model (``cadenza.actions.inputs``): a JSON ``true`` is not
   ``1`` and ``"5"`` is not ``5``, on REST as on MCP;
3. the handler's output is written with the output model's own serializer;
   streaming outputs (``LineStream``) are sent as they are produced.

FastAPI is the router and serves the documentation; it does not parse the input
(it would coerce types laxly). ``cadenza.api.openapi`` documents each operation from
the same models, so the document says exactly what this module accepts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from cadenza.actions.base import AnyAction, LineStream, check_scopes, invoke_parsed
from cadenza.actions.inputs import decode_text, takes_many, validate_model
from cadenza.api.auth import Auth
from cadenza.domain import errors

ActionHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def action_handler(action: AnyAction, auth: Auth) -> ActionHandler:
    """The request handler of ``action`` (steps 1–3 of the module docstring)."""
    repeatable = frozenset(
        name
        for name, info in action.input_model.model_fields.items()
        if takes_many(info.annotation)
    )

    async def handle(request: Request) -> Response:
        ctx = await auth.context(request)
        check_scopes(action, ctx)
        if action.method == "GET":
            given = _query_values(action, request, repeatable)
        else:
            given = await _body_values(request)
        data = validate_model(action.input_model, _with_path(action, request, given))
        return render(action, await invoke_parsed(action, ctx, data))

    return handle


def _with_path(action: AnyAction, request: Request, given: dict[str, Any]) -> dict[str, Any]:
    doubled = sorted(set(given) & set(action.path_params))
    if doubled:
        raise errors.InvalidInput([(name, "Give it in the path only.") for name in doubled])
    return {**given, **{name: request.path_params[name] for name in action.path_params}}


def _query_values(
    action: AnyAction, request: Request, repeatable: frozenset[str]
) -> dict[str, Any]:
    """The query string as JSON values: every value of a list field, the one value of
    any other; a repeated single-valued parameter is refused, since the client meant
    something that cannot be known (Starlette would silently keep the last)."""
    query = request.query_params
    repeated = sorted(key for key in query if key not in repeatable and len(query.getlist(key)) > 1)
    if repeated:
        raise errors.InvalidInput([(key, "Give this parameter at most once.") for key in repeated])
    values = {key: query.getlist(key) if key in repeatable else query[key] for key in query}
    return decode_text(action.input_model, values)


async def _body_values(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.InvalidInput([("body", "The body is not valid JSON.")]) from None
    if not isinstance(body, dict):
        raise errors.InvalidInput([("body", "The body must be a JSON object.")])
    return body


def render(action: AnyAction, result: Any) -> Response:
    """The HTTP response for an action's result."""
    if isinstance(result, LineStream):
        headers = {"Cache-Control": "no-store"}
        if result.filename:
            headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
        if result.media_type == "text/event-stream":
            headers["X-Accel-Buffering"] = "no"
        return StreamingResponse(result.lines, media_type=result.media_type, headers=headers)
    if not isinstance(result, BaseModel):
        raise TypeError(f"{action.name} returned {type(result).__name__}, not a model")
    return Response(
        result.model_dump_json(by_alias=True),
        status_code=action.success_status,
        media_type="application/json",
    )


def _route_class(handler: ActionHandler) -> type[APIRoute]:
    class ActionRoute(APIRoute):
        def get_route_handler(self) -> ActionHandler:
            return handler

    return ActionRoute


async def _documented_only() -> None:
    """Stands in for the handler in FastAPI's view: it takes no parameters, so FastAPI
    parses nothing and ``cadenza.api.openapi`` documents the operation."""


def add_action_route(router: APIRouter, prefix: str, action: AnyAction, auth: Auth) -> None:
    router.add_api_route(
        prefix + action.path,
        _documented_only,
        methods=[action.method],
        name=action.name,
        operation_id=action.name,
        summary=action.summary,
        description=action.description,
        status_code=action.success_status,
        tags=[action.tags[0] if action.tags else action.path.split("/")[1]],
        openapi_extra={"x-cadenza-scopes": sorted(s.value for s in action.scopes)},
        route_class_override=_route_class(action_handler(action, auth)),
    )


def add_action_routes(
    router: APIRouter, prefix: str, actions: tuple[AnyAction, ...], auth: Auth
) -> None:
    """One route per action under ``prefix``; fixed paths first, so that
    ``/runs/export`` is not taken for a run id. Routes are added to the app's own
    router directly: ``include_router`` would build every route a second time."""
    for action in sorted(actions, key=lambda a: a.path.count("{")):
        add_action_route(router, prefix, action, auth)
