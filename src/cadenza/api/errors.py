"""Errors on REST: ``application/problem+json`` (RFC 9457) from one mapping table.

``PROBLEMS`` maps each domain error type to an HTTP status and title; a subclass
not listed takes its nearest listed ancestor's row. Every body carries ``type``,
``title``, ``status``, ``detail``, the stable ``code`` of the error class and the
request id; validation failures add ``errors: [{field, message}]``, one entry per
offending field, for FastAPI's own request validation too.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from cadenza.actions.inputs import field_path
from cadenza.domain import errors

PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEMS: dict[type[errors.CadenzaError], tuple[int, str]] = {
    errors.ValidationError: (422, "The input is invalid"),
    errors.NotFound: (404, "Not found"),
    errors.Conflict: (409, "The current state forbids this"),
    errors.AuthenticationFailed: (401, "Authentication required"),
    errors.PermissionDenied: (403, "Permission denied"),
    errors.RateLimited: (429, "Too many requests"),
    errors.UnsafeTarget: (422, "The target address is refused"),
    errors.BudgetExhausted: (429, "The planner budget is used up"),
    errors.CadenzaError: (400, "The request cannot be served"),
}
"""The one table from error types to HTTP statuses."""

_HTTP_CODES = {404: "route_not_found", 405: "method_not_allowed"}


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the offending input field.")
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code, the same on every surface.")
    request_id: str | None = None
    errors: list[FieldProblem] | None = None


def status_of(exc: errors.CadenzaError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        row = PROBLEMS.get(cls)
        if row is not None:
            return row
    return PROBLEMS[errors.CadenzaError]


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    field_errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"urn:cadenza:problem:{code}",
        title=title,
        status=status,
        detail=detail,
        code=code,
        request_id=getattr(request.state, "request_id", None),
        errors=field_errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_errors(exc: errors.CadenzaError) -> list[FieldProblem] | None:
    if isinstance(exc, errors.InvalidInput):
        # A rule over the whole input (since before until) has no field of its own.
        return [FieldProblem(field=f or "body", message=m) for f, m in exc.problems]
    if isinstance(exc, errors.ValidationError):
        return [FieldProblem(field=exc.field, message=exc.message)]
    return None


async def cadenza_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.CadenzaError)
    status, title = status_of(exc)
    headers = None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_seconds)))}
    problems = _field_errors(exc)
    detail = exc.message
    if isinstance(exc, errors.InvalidInput) and problems:
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return problem_response(
        request, status, title, detail, exc.code, field_errors=problems, headers=headers
    )


def _request_field(loc: tuple[Any, ...]) -> str:
    # FastAPI prefixes where the value came from (body, query, path); the field
    # path is the same as the action's input model's without it.
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    return field_path(tuple(parts)) or "body"


async def request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldProblem(field=_request_field(tuple(err.get("loc", ()))), message=err["msg"])
        for err in exc.errors()
    ]
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems) or "Invalid request."
    status, title = PROBLEMS[errors.ValidationError]
    return problem_response(
        request, status, title, detail, errors.InvalidInput.code, field_errors=problems
    )


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        request, exc.status_code, str(exc.detail), str(exc.detail), code, headers=headers
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette's own 405
    names only the methods of the first route that matched the path, but each action
    is a route of its own, so one path may have several."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # No detail: an unexpected error's text may hold internals. The request id
    # ties the response to the server's log of the traceback.
    return problem_response(
        request, 500, "Internal error", "Something went wrong on our side.", "internal_error"
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(Exception, unexpected_error_handler)
    app.add_exception_handler(errors.CadenzaError, cadenza_error_handler)
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
