"""Exit codes: the CLI's one table from error kinds to statuses.

========  ===========================================================================
code      meaning
========  ===========================================================================
0         done
1         any other failure (the server's own error, an unexpected answer)
2         bad input: a refused value, a missing argument, an invalid manifest
3         not found: the job, endpoint, run, key or proposal does not exist for you
4         permission: no or a wrong API key, or the key lacks a scope
5         conflict: the current state forbids it (archived, already decided …)
6         unreachable: no Cadenza answered at the configured URL
7         rate limited: too many requests, or the planner's budget is used up
========  ===========================================================================

Commands that run the core in-process (``cadenza admin``) map the domain's error
types with this table; commands that call a server map the problem's stable ``code``
back to its error type first, so both kinds of command answer alike.
"""

from __future__ import annotations

from cadenza.domain import errors

OK = 0
FAILURE = 1
BAD_INPUT = 2
NOT_FOUND = 3
PERMISSION = 4
CONFLICT = 5
UNREACHABLE = 6
RATE_LIMITED = 7

EXIT_CODES: dict[type[errors.CadenzaError], int] = {
    errors.ValidationError: BAD_INPUT,
    errors.UnsafeTarget: BAD_INPUT,
    errors.NotFound: NOT_FOUND,
    errors.AuthenticationFailed: PERMISSION,
    errors.PermissionDenied: PERMISSION,
    errors.Conflict: CONFLICT,
    errors.RateLimited: RATE_LIMITED,
    errors.BudgetExhausted: RATE_LIMITED,
    errors.CadenzaError: FAILURE,
}
"""The one table; a subclass not listed takes its nearest listed ancestor's code."""

# For problems whose code this client does not know (a newer server, or an error of
# the HTTP layer itself such as an unknown route), the HTTP status decides the kind.
_KIND_OF_STATUS: dict[int, type[errors.CadenzaError]] = {
    400: errors.ValidationError,
    422: errors.ValidationError,
    404: errors.NotFound,
    401: errors.AuthenticationFailed,
    403: errors.PermissionDenied,
    409: errors.Conflict,
    429: errors.RateLimited,
}


def exit_code(kind: type[errors.CadenzaError]) -> int:
    """The exit code of an error type: its own row, or its nearest ancestor's."""
    for cls in kind.__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return FAILURE


def _every_error_type() -> list[type[errors.CadenzaError]]:
    found: list[type[errors.CadenzaError]] = [errors.CadenzaError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


def kind_of_problem(code: str, status: int) -> type[errors.CadenzaError]:
    """The error type behind a problem+json body's ``code`` (or, failing that, its
    HTTP status); ``CadenzaError`` when neither says more."""
    for cls in _every_error_type():
        if cls.code == code:
            return cls
    return _KIND_OF_STATUS.get(status, errors.CadenzaError)
