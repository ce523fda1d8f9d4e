"""The CLI's REST client: one catalogue action, one HTTP request.

Requests are composed from the action's own route, as the server derives its routes
(``cadenza.api.routes``): path parameters fill the ``{names}`` of its path, a GET
sends the other fields as query parameters (lists repeated), any other method sends
them as a JSON body. Errors come back as ``CliError``: the problem's message, its
field errors and the exit code of its kind (``cadenza.cli.exits``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx2

from cadenza.actions.base import AnyAction
from cadenza.cli import exits
from cadenza.cli.profiles import Connection
from cadenza.domain import errors

USER_AGENT = "cadenza-cli"


class CliError(Exception):
    """A failure to report on stderr, with the exit code of its kind."""

    def __init__(
        self, message: str, code: int, field_errors: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field_errors = list(field_errors)


class ApiClient:
    """Calls actions on the server of ``connection``; use as a context manager."""

    def __init__(self, connection: Connection, *, timeout: float = 300.0) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if connection.api_key:
            headers["Authorization"] = f"Bearer {connection.api_key}"
        self.connection = connection
        self._http = httpx2.Client(
            base_url=connection.api, headers=headers, timeout=httpx2.Timeout(timeout, connect=10)
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def call(self, action: AnyAction, payload: dict[str, Any]) -> Any:
        """The action's JSON result; raises ``CliError``."""
        response = self._send(action, payload, stream=False)
        try:
            return response.json()
        finally:
            response.close()

    def stream(self, action: AnyAction, payload: dict[str, Any]) -> Iterator[str]:
        """The lines of a streaming action's result as they arrive."""
        response = self._send(action, payload, stream=True)
        try:
            yield from response.iter_lines()
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from None
        finally:
            response.close()

    def _send(self, action: AnyAction, payload: dict[str, Any], *, stream: bool) -> httpx2.Response:
        path, rest = _route(action, payload)
        query = _query(rest) if action.method == "GET" else None
        body = rest if action.method != "GET" and rest else None
        request = self._http.build_request(action.method, path, params=query, json=body)
        try:
            response = self._http.send(request, stream=stream)
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            response.read()
            response.close()
            raise problem_error(response)
        return response

    def _unreachable(self, exc: Exception) -> CliError:
        return CliError(
            f"Cannot reach Cadenza at {self.connection.url} ({type(exc).__name__}: {exc}). "
            "Is the server running? Set CADENZA_URL or pick a profile with --profile.",
            exits.UNREACHABLE,
        )


def _route(action: AnyAction, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rest = dict(payload)
    values = {}
    for name in action.path_params:
        value = rest.pop(name, None)
        if value in (None, ""):
            raise CliError(f"Give the {name.replace('_', ' ')}.", exits.BAD_INPUT)
        values[name] = quote(str(value), safe="")
    return action.path.format(**values), rest


def _query(fields: dict[str, Any]) -> httpx2.QueryParams:
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            pairs.append((name, _query_text(item)))
    return httpx2.QueryParams(pairs)


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def problem_error(response: httpx2.Response) -> CliError:
    """A ``CliError`` from an error response: problem+json when it is one."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = response.text.strip()[:300] or response.reason_phrase
        return CliError(f"HTTP {response.status_code}: {text}", exits.FAILURE)
    kind = exits.kind_of_problem(str(problem.get("code", "")), response.status_code)
    message = str(problem.get("detail") or problem.get("title") or "The request failed.")
    if issubclass(kind, errors.AuthenticationFailed):
        message += " Set CADENZA_API_KEY or use --profile with a key."
    fields = [
        (str(item.get("field", "")), str(item.get("message", "")))
        for item in problem.get("errors") or []
        if isinstance(item, dict)
    ]
    return CliError(message, exits.exit_code(kind), fields)
