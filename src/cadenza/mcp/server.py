"""The MCP server: the registry's actions as tools, two resources, and stdio serving.

Tools are generated from ``REGISTRY`` (``cadenza.mcp.tools``): the tool name is the
action name, and each caller lists only the tools its scopes allow. A call runs
through the catalogue (``cadenza.mcp.calls``); its result is the action's output as
JSON, both as structured content and as one text block. A failure is a tool error
(``cadenza.mcp.errors``): ``isError`` with the error as a JSON text block.

Who the caller is depends on the transport:

* streamable HTTP (``cadenza.mcp.http``): the bearer API key of each HTTP request;
* stdio (``run_stdio``): one API key for the process, authenticated again on every
  call so a revoked key stops working at once, as on REST;
* in memory (tests): any ``CallerSource`` given to ``build_server``.

Agent-kind keys act as ``agent`` actors, so audit events name the agent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context as McpContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import TextResource
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_REQUEST,
    CallToolResult,
    TextContent,
    Tool,
    ToolAnnotations,
)
from starlette.requests import Request

from cadenza.actions import BY_NAME
from cadenza.actions.base import Context, Services
from cadenza.actions.identity import Caller, authenticate_key, caller_for_key
from cadenza.actions.meta import catalog
from cadenza.domain import errors
from cadenza.mcp import texts
from cadenza.mcp.calls import run_tool
from cadenza.mcp.errors import ToolErrorOut, internal_error, tool_error, unknown_tool
from cadenza.mcp.tools import ToolSpec, glossary_text, registry_tools, visible

log = logging.getLogger("cadenza.mcp")

SERVER_NAME = "cadenza"
SCHEDULING_URI = "cadenza://docs/scheduling"
CATALOG_URI = "cadenza://catalog"

CallerSource = Callable[[Request | None], Awaitable[Caller]]
"""Finds the caller of one request from the HTTP request that carried it (``None``
on stdio and in memory); raises ``AuthenticationFailed`` when there is none."""


class CadenzaMCP(MCPServer[Any]):
    """An ``MCPServer`` whose tools are the registry's actions.

    ``list_tools`` and ``call_tool`` are overridden instead of registering Python
    functions, because a function's signature would define the input schema, and
    here the action's input model must define it.
    """

    def __init__(self, services: Services, callers: CallerSource) -> None:
        super().__init__(
            name=SERVER_NAME,
            title="Cadenza",
            description="Adaptive HTTP job scheduler",
            instructions=f"{texts.INSTRUCTIONS}\n\n{glossary_text()}",
            version="0.1.0",
            log_level="WARNING",
        )
        self._services = services
        self._callers = callers
        self.middleware.append(self._scoped_tool_list)
        self.add_resource(
            TextResource(
                uri=SCHEDULING_URI,
                name="scheduling-semantics",
                title="How Cadenza decides when an endpoint runs",
                description="The scheduling rules, hints, pauses and guardrails, for agents.",
                mime_type="text/markdown",
                text=texts.SCHEDULING_GUIDE,
            )
        )
        self.add_resource(
            TextResource(
                uri=CATALOG_URI,
                name="service-catalog",
                title="Every Cadenza action with its JSON Schemas",
                description="The same document as the describe_service_catalog tool.",
                mime_type="application/json",
                text=catalog().model_dump_json(),
            )
        )

    async def list_tools(self) -> list[Tool]:
        """Every tool; ``_scoped_tool_list`` narrows the answer to the caller's."""
        return [_tool_of(spec) for spec in registry_tools()]

    async def _scoped_tool_list(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Server middleware: a ``tools/list`` answer keeps the caller's tools only."""
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result  # the chain hands on the wire form: a dict with "tools"
        try:
            caller = await self._callers(_as_request(ctx.request))
        except errors.CadenzaError as exc:
            raise MCPError(INVALID_REQUEST, exc.message) from None
        allowed = {spec.name for spec in visible(registry_tools(), caller.scopes)}
        tools = [tool for tool in result.get("tools", []) if tool.get("name") in allowed]
        return {**result, "tools": tools}

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        context: McpContext[Any, Any] | None = None,
    ) -> CallToolResult:
        """Run the action ``name`` for the caller; every failure is a tool error."""
        action = BY_NAME.get(name)
        if action is None:
            return _error_result(unknown_tool(name))
        try:
            caller = await self._callers(_http_request(context))
            ctx = Context.for_caller(self._services, caller.tenant_id, caller.actor, caller.scopes)
            payload = await run_tool(action, ctx, arguments)
        except errors.CadenzaError as exc:
            return _error_result(tool_error(exc))
        except Exception:
            log.exception("Tool %r failed unexpectedly", name)
            return _error_result(internal_error())
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(payload))],
            structured_content=payload,
        )


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


async def run_stdio(services: Services, api_key: str) -> None:
    """Serve MCP on this process's stdin/stdout as the owner of ``api_key``.

    The key is checked before serving, so a bad key fails at start
    (``AuthenticationFailed``) instead of on the first call.
    """
    callers = key_caller(services, api_key)
    await callers(None)
    await build_server(services, callers).run_stdio_async()


def _http_request(context: McpContext[Any, Any] | None) -> Request | None:
    if context is None:
        return None
    try:
        request = context.request_context.request
    except ValueError:  # no request context: called outside a session
        return None
    return _as_request(request)


def _as_request(request: object) -> Request | None:
    return request if isinstance(request, Request) else None


def _tool_of(spec: ToolSpec) -> Tool:
    return Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        annotations=_annotations(spec),
    )


def _annotations(spec: ToolSpec) -> ToolAnnotations:
    """The hints that differ from the protocol's defaults (not read-only, destructive,
    not idempotent); a read-only tool's other hints mean nothing, so it has one."""
    if spec.read_only:
        return ToolAnnotations(read_only_hint=True)
    return ToolAnnotations(
        destructive_hint=False if not spec.destructive else None,
        idempotent_hint=True if spec.idempotent else None,
    )


def _error_result(error: ToolErrorOut) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=error.text())], is_error=True)
