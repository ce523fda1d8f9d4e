"""REST routes generated from the action registry; no route is written by hand.

For each action: path parameters are the ``{names}`` in its path (fields of its
input model); GET actions take the other fields as query parameters, the rest as a
JSON body. Where an action has path parameters, the query/body model is derived
from its input model by leaving those fields out, so the schema stays the action's.
The caller is authenticated and its scopes checked before the input is validated.
The handler's output is written with the output model's own serializer; streaming
outputs (``LineStream``) are sent as they are produced.

GET actions without path parameters (the lists: the API's hottest reads) are served
by a lean handler: the query string is validated once, by the action's own input
model, instead of by FastAPI's per-parameter machinery and then again by ``invoke``.
Their OpenAPI operation is generated from the same signature as every other route's,
and invalid input is reported as FastAPI reports it. Likewise a body that is the
action's whole input model (no path parameters) is validated once, by FastAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, get_args, get_origin

import pydantic
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, create_model

from cadenza.actions.base import (
    AnyAction,
    Context,
    LineStream,
    check_scopes,
    invoke,
    invoke_parsed,
)
from cadenza.actions.wire import Input
from cadenza.api.auth import Auth
from cadenza.api.errors import PROBLEM_MEDIA_TYPE, PROBLEMS
from cadenza.domain import errors

_ERROR_STATUSES = (400, 401, 403, 404, 409, 422, 429)
_DERIVED: dict[tuple[type[BaseModel], str], type[BaseModel]] = {}
_KW = inspect.Parameter.KEYWORD_ONLY


def derived_model(
    model: type[BaseModel], leave_out: tuple[str, ...], suffix: str
) -> type[BaseModel]:
    """``model`` without the ``leave_out`` fields (cached, so names stay unique)."""
    key = (model, suffix)
    if key not in _DERIVED:
        fields: dict[str, Any] = {
            name: (info.annotation, info)
            for name, info in model.model_fields.items()
            if name not in leave_out
        }
        _DERIVED[key] = create_model(
            f"{model.__name__}{suffix}",
            __base__=Input,
            __doc__=model.__doc__,
            **fields,
        )
    return _DERIVED[key]


def _error_responses() -> dict[int | str, dict[str, Any]]:
    # A $ref, not "model": Problem, which would build a validator per route and
    # status; app.py adds the Problem schema to the components once.
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    titles: dict[int, str] = {}
    for status, title in PROBLEMS.values():
        titles.setdefault(status, title)
    return {
        status: {
            "description": titles.get(status, "The request is malformed"),
            "content": {PROBLEM_MEDIA_TYPE: ref},
        }
        for status in _ERROR_STATUSES
    }


def _carrier(action: AnyAction, rest: list[str]) -> inspect.Parameter:
    """The one parameter carrying the non-path fields: a query model for GET, else a
    JSON body (optional when none of its fields is required)."""
    fields = action.input_model.model_fields
    path_names = action.path_params
    suffix = "Query" if action.method == "GET" else "Body"
    model = (
        derived_model(action.input_model, path_names, suffix) if path_names else action.input_model
    )
    if action.method == "GET":
        return inspect.Parameter("params", _KW, annotation=Annotated[model, Query()])
    if any(fields[name].is_required() for name in rest):
        return inspect.Parameter("body", _KW, annotation=Annotated[model, Body()])
    return inspect.Parameter("body", _KW, annotation=Annotated[model | None, Body()], default=None)


def _parameters(action: AnyAction, auth: Auth) -> tuple[list[inspect.Parameter], str | None]:
    """The endpoint's signature: path params, one query or body model, the context."""
    fields = action.input_model.model_fields
    path_names = action.path_params
    params = [
        inspect.Parameter(
            name,
            _KW,
            annotation=Annotated[
                str, *fields[name].metadata, Path(description=fields[name].description)
            ],
        )
        for name in path_names
    ]
    rest = [name for name in fields if name not in path_names]
    carrier = _carrier(action, rest) if rest else None
    if carrier is not None:
        params.append(carrier)

    repeatable = _list_fields(action.input_model)

    async def scoped_context(request: Request) -> Context:
        return await _scoped_context(action, auth, request, repeatable)

    params.append(
        inspect.Parameter("ctx", _KW, annotation=Annotated[Context, Depends(scoped_context)])
    )
    return params, carrier.name if carrier is not None else None


async def _scoped_context(
    action: AnyAction, auth: Auth, request: Request, repeatable: frozenset[str]
) -> Context:
    ctx = await auth.context(request)
    check_scopes(action, ctx)
    _refuse_repeated_query_params(request, repeatable)
    return ctx


def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields that take several values, so may repeat in a query string."""
    collections = (list, tuple, set, frozenset)

    def takes_many(annotation: Any) -> bool:
        return get_origin(annotation) in collections or any(
            get_origin(arm) in collections for arm in get_args(annotation)
        )

    return frozenset(
        name for name, info in model.model_fields.items() if takes_many(info.annotation)
    )


def _refuse_repeated_query_params(request: Request, repeatable: frozenset[str]) -> None:
    # Starlette keeps the last of ``?cursor=a&cursor=b`` silently; a client that sent
    # two values meant something we cannot know, so it is told instead.
    repeated = sorted(
        key
        for key in set(request.query_params.keys())
        if key not in repeatable and len(request.query_params.getlist(key)) > 1
    )
    if repeated:
        raise errors.InvalidInput([(key, "Give this parameter at most once.") for key in repeated])


def _query_values(request: Request, repeatable: frozenset[str]) -> dict[str, Any]:
    """The query string as FastAPI hands it to a query model: every value of a list
    field, the one value of any other (repeats were refused), unknown names kept so
    that the model refuses them."""
    query = request.query_params
    values: dict[str, Any] = {}
    for key in query.keys():  # noqa: SIM118  (a multi-dict: keys() lists each name once)
        given = query.getlist(key)
        values[key] = given if key in repeatable or len(given) > 1 else given[0]
    return values


QueryHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def _query_handler(action: AnyAction, auth: Auth) -> QueryHandler:
    """The lean handler of a GET action without path parameters (module docstring)."""
    model = action.input_model
    repeatable = _list_fields(model)

    async def handle(request: Request) -> Response:
        ctx = await _scoped_context(action, auth, request, repeatable)
        try:
            data = model.model_validate(_query_values(request, repeatable))
        except pydantic.ValidationError as exc:
            # Located as FastAPI locates query errors, so the problem body is the same.
            located = [{**err, "loc": ("query", *err["loc"])} for err in exc.errors()]
            raise RequestValidationError(located) from None
        return _render(action, await invoke_parsed(action, ctx, data))

    return handle


def _route_class(action: AnyAction, auth: Auth) -> type[APIRoute] | None:
    if action.method != "GET" or action.path_params:
        return None
    handler = _query_handler(action, auth)

    class QueryActionRoute(APIRoute):
        def get_route_handler(self) -> QueryHandler:
            return handler

    return QueryActionRoute


def _render(action: AnyAction, result: Any) -> Response:
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


def make_endpoint(action: AnyAction, auth: Auth) -> Callable[..., Awaitable[Response]]:
    params, carrier = _parameters(action, auth)
    path_names = action.path_params

    async def endpoint(**kwargs: Any) -> Response:
        ctx: Context = kwargs["ctx"]
        given = kwargs.get(carrier) if carrier else None
        if isinstance(given, action.input_model):
            # The body was validated with the action's own model (no path parameters
            # to add): a second pass would only cost time, a lot of it for a manifest.
            return _render(action, await invoke_parsed(action, ctx, given))
        payload: dict[str, Any] = {name: kwargs[name] for name in path_names}
        if given is not None:
            payload.update(given.model_dump(exclude_unset=True, by_alias=True))
        return _render(action, await invoke(action, ctx, payload))

    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = action.name
    endpoint.__doc__ = action.description
    return endpoint


def add_action_route(router: APIRouter, prefix: str, action: AnyAction, auth: Auth) -> None:
    responses = _error_responses()
    extra: dict[str, Any] = {"x-cadenza-scopes": sorted(s.value for s in action.scopes)}
    if action.streams:
        responses[200] = {
            "description": f"A stream of {action.output_model.__name__} items.",
            "content": {media: {"schema": {"type": "string"}} for media in action.streams},
        }
    router.add_api_route(
        prefix + action.path,
        make_endpoint(action, auth),
        methods=[action.method],
        name=action.name,
        operation_id=action.name,
        summary=action.summary,
        description=action.description,
        response_model=None if action.streams else action.output_model,
        status_code=action.success_status,
        responses=responses,
        response_class=StreamingResponse if action.streams else JSONResponse,
        tags=[action.tags[0] if action.tags else action.path.split("/")[1]],
        openapi_extra=extra,
        route_class_override=_route_class(action, auth),
    )


def add_action_routes(
    router: APIRouter, prefix: str, actions: tuple[AnyAction, ...], auth: Auth
) -> None:
    """One route per action under ``prefix``; fixed paths first, so that
    ``/runs/export`` is not taken for a run id. Routes are added to the app's own
    router directly: ``include_router`` would build every route a second time."""
    for action in sorted(actions, key=lambda a: a.path.count("{")):
        add_action_route(router, prefix, action, auth)
