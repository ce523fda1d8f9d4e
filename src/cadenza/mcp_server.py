"""The MCP surface: every action of the registry as a tool, for AI agents.

The only module that imports the MCP SDK. Tools are generated from ``REGISTRY``:
the tool name is the action name, the input schema is the action's input model's
JSON Schema, the output schema its output model's (a bounded sample for streaming
actions, see ``cadenza.mcp_support``), and the annotations come from the action's
flags. Each call goes through ``invoke`` exactly like a REST request: scopes first,
then validation, then the handler, for the caller's tenant only. Domain errors come
back as tool errors (``isError``) whose structured content carries the stable
``code`` of REST, the message and, for bad arguments, one entry per field.

Who the caller is depends on the transport:

* streamable HTTP (``mount_mcp``): every HTTP request must carry
  ``Authorization: Bearer cdz_…``; ``BearerGate`` answers 401 without a usable key
  and hands the authenticated caller to the tool call through the ASGI scope. The
  endpoint is stateless (each request is served on its own, so any API process can
  answer it) and answers with plain JSON.
* stdio (``run_stdio``): one API key for the process, authenticated again on every
  call so a revoked key stops working at once, as on REST.
* in memory (tests): any ``CallerSource`` given to ``build_server``.

Agent-kind keys act as ``agent`` actors, so audit events name the agent.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from mcp.server.mcpserver import Context as McpContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import TextResource
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, Tool, ToolAnnotations
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cadenza import mcp_support as support
from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import AnyAction, Context, LineStream, Services, invoke
from cadenza.actions.identity import Caller, authenticate_key, caller_for_key
from cadenza.domain import errors

log = logging.getLogger("cadenza.mcp")

SERVER_NAME = "cadenza"
CALLER_SCOPE_KEY = "cadenza.caller"
"""Where ``BearerGate`` leaves the authenticated ``Caller`` in the ASGI scope."""
SCHEDULING_URI = "cadenza://docs/scheduling"
CATALOG_URI = "cadenza://catalog"
INSTRUCTIONS = (
    "Cadenza schedules HTTP requests (endpoints, grouped in jobs) by cron or interval and "
    "lets you steer them with short-lived hints. Start with whoami (your tenant and "
    "scopes); read the resource cadenza://docs/scheduling for the rules that decide the "
    "next run. Ids come from list_jobs, list_endpoints and list_runs. Every change is "
    "audited with your identity: pass a short reason. Times are RFC 3339 UTC; durations "
    "are seconds in *_seconds fields. Errors carry a stable code and a hint."
)

CallerSource = Callable[[Request | None], Awaitable[Caller]]
"""Finds the caller of one tool call from the HTTP request that carried it (``None``
on stdio and in memory); raises ``AuthenticationFailed`` when there is none."""

RateLimit = Callable[[str], None]
"""Charges one request to a caller id; raises ``RateLimited`` when its bucket is empty."""


class CadenzaMCP(MCPServer[Any]):
    """An ``MCPServer`` whose tools are the registry's actions.

    ``list_tools`` and ``call_tool`` are overridden instead of registering Python
    functions, because a function's signature would define the input schema, and
    here the action's input model must define it, unchanged.
    """

    def __init__(self, services: Services, callers: CallerSource) -> None:
        super().__init__(
            name=SERVER_NAME,
            title="Cadenza",
            description="Adaptive HTTP job scheduler",
            instructions=INSTRUCTIONS,
            version="0.1.0",
            log_level="WARNING",
        )
        self._services = services
        self._callers = callers
        self.add_resource(
            TextResource(
                uri=SCHEDULING_URI,
                name="scheduling-semantics",
                title="How Cadenza decides when an endpoint runs",
                description="The scheduling rules, hints, pauses and guardrails, for agents.",
                mime_type="text/markdown",
                text=support.SCHEDULING_GUIDE,
            )
        )
        self.add_resource(
            TextResource(
                uri=CATALOG_URI,
                name="service-catalog",
                title="Every Cadenza action with its JSON Schemas",
                description="The same document as the describe_service_catalog tool.",
                mime_type="application/json",
                text=_catalog_text(),
            )
        )

    async def list_tools(self) -> list[Tool]:
        return list(_registry_tools())

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        context: McpContext[Any, Any] | None = None,
    ) -> CallToolResult:
        """Run the action ``name`` for the caller; every failure is a tool error."""
        action = BY_NAME.get(name)
        if action is None:
            return _error_result(support.unknown_tool(name))
        try:
            caller = await self._callers(_http_request(context))
            ctx = Context.for_caller(self._services, caller.tenant_id, caller.actor, caller.scopes)
            return await _run(action, ctx, arguments)
        except errors.CadenzaError as exc:
            return _error_result(support.tool_error(exc))
        except Exception:
            log.exception("Tool %r failed unexpectedly", name)
            return _error_result(support.internal_error())


def build_server(services: Services, callers: CallerSource) -> CadenzaMCP:
    """The MCP server over ``services``; ``callers`` decides who each call acts as."""
    return CadenzaMCP(services, callers)


def fixed_caller(caller: Caller) -> CallerSource:
    """A ``CallerSource`` that always answers ``caller`` (in-process use and tests)."""

    async def source(_request: Request | None) -> Caller:
        return caller

    return source


def key_caller(services: Services, api_key: str) -> CallerSource:
    """A ``CallerSource`` that authenticates ``api_key`` on every call (stdio)."""

    async def source(_request: Request | None) -> Caller:
        key = await authenticate_key(services.store, services.clock, services.keyring, api_key)
        return caller_for_key(key)

    return source


async def scope_caller(request: Request | None) -> Caller:
    """The caller ``BearerGate`` authenticated for this HTTP request."""
    caller = None if request is None else request.scope.get(CALLER_SCOPE_KEY)
    if not isinstance(caller, Caller):
        raise errors.AuthenticationFailed("Send an API key as 'Authorization: Bearer cdz_…'.")
    return caller


def _http_request(context: McpContext[Any, Any] | None) -> Request | None:
    if context is None:
        return None
    try:
        request = context.request_context.request
    except ValueError:  # no request context: called outside a session
        return None
    return request if isinstance(request, Request) else None


@functools.cache
def _registry_tools() -> tuple[Tool, ...]:
    # JSON Schema generation is slow (about a second for the whole registry) and the
    # registry never changes in a process, so every server shares one computation.
    return tuple(_tool_of(action) for action in REGISTRY)


@functools.cache
def _input_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = BY_NAME[name].input_model.model_json_schema()
    return schema


@functools.cache
def _catalog_text() -> str:
    return support.catalog_json(REGISTRY)


def _tool_of(action: AnyAction) -> Tool:
    output_schema = (
        support.sample_schema(action)
        if action.streams
        else action.output_model.model_json_schema(mode="serialization")
    )
    return Tool(
        name=action.name,
        title=action.summary,
        description=support.tool_description(action),
        input_schema=_input_schema(action.name),
        output_schema=output_schema,
        annotations=ToolAnnotations(
            title=action.summary,
            read_only_hint=support.read_only(action),
            destructive_hint=action.destructive,
            idempotent_hint=action.idempotent,
        ),
    )


async def _run(action: AnyAction, ctx: Context, arguments: Mapping[str, Any]) -> CallToolResult:
    given = support.parse_stringified(_input_schema(action.name), arguments)
    result = await invoke(action, ctx, given)
    if isinstance(result, LineStream):
        payload = await support.read_sample(result)
    elif isinstance(result, BaseModel):
        payload = result.model_dump(mode="json", by_alias=True)
    else:
        payload = action.output_model.model_validate(result).model_dump(mode="json", by_alias=True)
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload))],
        structured_content=payload,
    )


def _error_result(error: support.ToolErrorOut) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=error.text())],
        structured_content=error.model_dump(mode="json", exclude_none=True),
        is_error=True,
    )


async def run_stdio(services: Services, api_key: str) -> None:
    """Serve MCP on this process's stdin/stdout as the owner of ``api_key``.

    The key is checked before serving, so a bad key fails at start
    (``AuthenticationFailed``) instead of on the first call.
    """
    callers = key_caller(services, api_key)
    await callers(None)
    await build_server(services, callers).run_stdio_async()


class BearerGate:
    """ASGI middleware: authenticate ``Authorization: Bearer cdz_…`` on every request.

    Without a usable key the answer is 401 problem+json with ``WWW-Authenticate``;
    an empty rate bucket answers 429 with ``Retry-After``. The caller is left in the
    scope under ``CALLER_SCOPE_KEY`` for ``scope_caller``.
    """

    def __init__(self, app: ASGIApp, services: Services, rate_limit: RateLimit | None) -> None:
        self.app = app
        self.services = services
        self.rate_limit = rate_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            caller = await self._authenticate(Headers(scope=scope).get("authorization", ""))
        except errors.CadenzaError as exc:
            await _gate_refusal(exc)(scope, receive, send)
            return
        scope[CALLER_SCOPE_KEY] = caller
        await self.app(scope, receive, send)

    async def _authenticate(self, header: str) -> Caller:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.AuthenticationFailed("Send an API key as 'Authorization: Bearer cdz_…'.")
        s = self.services
        caller = caller_for_key(
            await authenticate_key(s.store, s.clock, s.keyring, token.strip(), s.key_cache)
        )
        if self.rate_limit is not None:
            self.rate_limit(caller.actor.id)
        return caller


def _gate_refusal(exc: errors.CadenzaError) -> JSONResponse:
    if isinstance(exc, errors.RateLimited):
        status, title = 429, "Too many requests"
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_seconds)))}
    else:
        status, title = 401, "Authentication required"
        headers = {"WWW-Authenticate": 'Bearer realm="cadenza"'}
    body = {
        "type": f"urn:cadenza:problem:{exc.code}",
        "title": title,
        "status": status,
        "detail": exc.message,
        "code": exc.code,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def mount_mcp(
    app: Starlette,
    services: Services,
    *,
    path: str = "/mcp",
    rate_limit: RateLimit | None = None,
) -> None:
    """Serve MCP over streamable HTTP at ``path`` of ``app`` (FastAPI or Starlette).

    Adds the route first, so no catch-all route can shadow it, and wraps the app's
    lifespan so the MCP session manager runs exactly as long as the app: the ASGI
    server must run lifespan events (uvicorn does by default). ``rate_limit``, when
    given, is charged once per request, e.g. the REST API's per-caller buckets.
    """
    server = build_server(services, scope_caller)
    # Every request must carry a bearer key, which a browser never adds on its own,
    # so DNS-rebinding checks (Host/Origin allowlists) add nothing and would break
    # deployments behind their own host names.
    inner = server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.insert(0, Route(path, endpoint=BearerGate(inner, services, rate_limit)))
    _run_during_lifespan(app, server)


def _run_during_lifespan(app: Starlette, server: CadenzaMCP) -> None:
    outer = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        async with server.session_manager.run(), outer(instance) as state:
            yield state

    app.router.lifespan_context = lifespan


def create_mcp_app(services: Services, *, rate_limit: RateLimit | None = None) -> Starlette:
    """A standalone ASGI app serving only MCP at ``/mcp`` (see ``mount_mcp``)."""
    app = Starlette()
    mount_mcp(app, services, rate_limit=rate_limit)
    return app
