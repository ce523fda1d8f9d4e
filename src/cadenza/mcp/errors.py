"""Tool errors: what an agent reads when a call fails.

A failed call is an ``isError`` result whose one text block is the error as JSON:
the stable ``code`` of REST, the message, a hint saying what to do, ``retryable``,
and for bad arguments one entry per field. It carries no ``structuredContent``:
that field must match the tool's output schema, and clients (the TypeScript SDK,
the MCP Inspector) check it on errors too.

``TOOL_ERRORS`` is the one table from domain error types to tool errors; a
subclass not listed takes its nearest listed ancestor's row, and the ``code`` is
always the error class's own.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from cadenza.domain import errors


class FieldProblemOut(BaseModel):
    field: str = Field(description="Dotted path of the offending argument.")
    message: str


class ToolErrorOut(BaseModel):
    """The body of every tool error."""

    code: str = Field(description="Stable error code, the same as on the REST API.")
    message: str
    hint: str = Field(description="What to do about it.")
    retryable: bool = Field(description="The same call may succeed later unchanged.")
    errors: list[FieldProblemOut] | None = None
    retry_after_seconds: float | None = None

    def text(self) -> str:
        """The error as the JSON text block of the result."""
        return self.model_dump_json(exclude_none=True)


TOOL_ERRORS: dict[type[errors.CadenzaError], tuple[bool, str]] = {
    errors.InvalidInput: (False, "Fix the arguments listed in errors and call again."),
    errors.ValidationError: (False, "Fix the named argument and call again."),
    errors.NotFound: (
        False,
        "No such id in your tenant. list_jobs, list_endpoints, list_runs and "
        "list_api_keys show the ids you can use.",
    ),
    errors.Archived: (False, "It is archived: its schedule is frozen; create a new one."),
    errors.Conflict: (False, "The current state forbids this; read it again and adjust."),
    errors.AuthenticationFailed: (
        False,
        "The API key is missing, unknown, revoked or expired; configure a valid cdz_ key.",
    ),
    errors.PermissionDenied: (
        False,
        "Your API key lacks a scope this tool needs; whoami lists the scopes you hold.",
    ),
    errors.RateLimited: (True, "Too many calls; wait retry_after_seconds, then retry."),
    errors.BudgetExhausted: (True, "The tenant's planner budget is used up until it refills."),
    errors.UnsafeTarget: (
        False,
        "The URL resolves to an address the SSRF guard refuses (private, loopback, "
        "metadata …); use a public address or ask the operator to allowlist it.",
    ),
    errors.CadenzaError: (False, "The call cannot be served as given."),
}
"""The one table from domain error types to tool errors: (retryable, hint)."""


def tool_error(exc: errors.CadenzaError) -> ToolErrorOut:
    """The tool error for a domain error: its stable code, message and field problems."""
    retryable, hint = _error_row(exc)
    problems: list[FieldProblemOut] | None = None
    if isinstance(exc, errors.InvalidInput):
        problems = [FieldProblemOut(field=f, message=m) for f, m in exc.problems]
    elif isinstance(exc, errors.ValidationError):
        problems = [FieldProblemOut(field=exc.field, message=exc.message)]
    retry_after = exc.retry_after_seconds if isinstance(exc, errors.RateLimited) else None
    return ToolErrorOut(
        code=exc.code,
        message=exc.message,
        hint=hint,
        retryable=retryable,
        errors=problems,
        retry_after_seconds=retry_after,
    )


def _error_row(exc: errors.CadenzaError) -> tuple[bool, str]:
    for cls in type(exc).__mro__:
        row = TOOL_ERRORS.get(cls)
        if row is not None:
            return row
    return TOOL_ERRORS[errors.CadenzaError]


def internal_error() -> ToolErrorOut:
    """What an unexpected failure looks like to the model: nothing of the exception leaks."""
    return ToolErrorOut(
        code="internal_error",
        message="Cadenza failed unexpectedly; the failure is logged on the server.",
        hint="Try again later; report it if it persists.",
        retryable=True,
    )


def unknown_tool(name: str) -> ToolErrorOut:
    return ToolErrorOut(
        code="unknown_tool",
        message=f"There is no tool named {name!r}.",
        hint="List the tools, or call describe_service_catalog.",
        retryable=False,
    )
