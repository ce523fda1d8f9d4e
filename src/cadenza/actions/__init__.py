"""The catalogue of what a user or an agent can do (ACTIONS.md).

``REGISTRY`` holds every action once. The REST routes (``cadenza.api``), the MCP
tools (``cadenza.mcp``) and the LLM planner's tools (``cadenza.planner.tools``, from
``PLANNER_TOOLS``) are generated from it. ``BY_NAME`` finds an action by its (MCP
tool) name.
"""

from __future__ import annotations

from types import MappingProxyType

from cadenza.actions import (
    alerts,
    audit,
    endpoints,
    events,
    health,
    hints,
    incidents,
    jobs,
    keys,
    manifest,
    meta,
    runs,
)
from cadenza.actions import planner as planner_actions
from cadenza.actions.base import (
    Action,
    AnyAction,
    Context,
    Example,
    LineStream,
    Services,
    invoke,
)

REGISTRY: tuple[AnyAction, ...] = (
    *jobs.ACTIONS,
    *endpoints.ACTIONS,
    *hints.ACTIONS,
    *runs.ACTIONS,
    *health.ACTIONS,
    *audit.ACTIONS,
    *events.ACTIONS,
    *keys.ACTIONS,
    *meta.ACTIONS,
    *planner_actions.ACTIONS,
    *manifest.ACTIONS,
    *alerts.ACTIONS,
    *incidents.ACTIONS,
)

BY_NAME = MappingProxyType({action.name: action for action in REGISTRY})

PLANNER_TOOLS: tuple[AnyAction, ...] = tuple(a for a in REGISTRY if a.planner_tool)

__all__ = [
    "BY_NAME",
    "PLANNER_TOOLS",
    "REGISTRY",
    "Action",
    "AnyAction",
    "Context",
    "Example",
    "LineStream",
    "Services",
    "invoke",
]
