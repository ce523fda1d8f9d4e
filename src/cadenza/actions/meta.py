"""Self-description: the service catalogue and the caller's identity."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field

from cadenza.actions.base import Action, Context, Example
from cadenza.actions.wire import ActorOut, Input, Output
from cadenza.domain.identity import Scope


class NoInput(Input):
    """This action takes no input."""


class ActionInfo(Output):
    name: str = Field(description="Also the MCP tool name.")
    summary: str
    description: str
    scopes: list[Scope] = Field(description="All are needed; admin implies every scope.")
    method: str
    path: str = Field(description="REST path under /api/v1.")
    mutates: bool
    idempotent: bool
    destructive: bool
    planner_tool: bool
    streams: list[str] = Field(description="Media types of a streamed result, if it streams.")
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class CatalogOut(Output):
    actions: list[ActionInfo]


def action_info(action: Action[Any, Any]) -> ActionInfo:
    return ActionInfo(
        name=action.name,
        summary=action.summary,
        description=action.description,
        scopes=sorted(action.scopes),
        method=action.method,
        path=action.path,
        mutates=action.mutates,
        idempotent=action.idempotent,
        destructive=action.destructive,
        planner_tool=action.planner_tool,
        streams=list(action.streams),
        input_schema=action.input_model.model_json_schema(),
        output_schema=action.output_model.model_json_schema(mode="serialization"),
    )


@functools.cache
def catalog() -> CatalogOut:
    """Built once per process: the registry never changes while it runs, and
    generating thirty JSON Schemas takes a noticeable fraction of a second."""
    # Imported here because the registry is assembled from this module too.
    from cadenza.actions import REGISTRY

    return CatalogOut(actions=[action_info(a) for a in REGISTRY])


async def describe_service_catalog(ctx: Context, data: NoInput) -> CatalogOut:
    return catalog()


class WhoAmIOut(Output):
    tenant_id: str
    actor: ActorOut
    scopes: list[Scope] = Field(description="Held scopes; admin implies every scope.")


async def whoami(ctx: Context, data: NoInput) -> WhoAmIOut:
    return WhoAmIOut(
        tenant_id=ctx.tenant_id, actor=ActorOut.of(ctx.actor), scopes=sorted(ctx.scopes)
    )


ACTIONS = (
    Action(
        name="describe_service_catalog",
        summary="Every action with its input and output JSON Schema",
        description=(
            "Lists every action Cadenza offers: name, purpose, scopes, REST route, flags "
            "(mutates, idempotent, destructive, planner tool) and JSON Schemas of its input "
            "and output. Start here to discover what you can do."
        ),
        input_model=NoInput,
        output_model=CatalogOut,
        handler=describe_service_catalog,
        scopes=frozenset(),
        method="GET",
        path="/catalog",
        mutates=False,
        idempotent=True,
        examples=(Example({}),),
    ),
    Action(
        name="whoami",
        summary="The caller, its tenant and scopes",
        description="Returns who you are acting as (user, API key or agent), your tenant and "
        "your scopes. Use it to check which actions you may call.",
        input_model=NoInput,
        output_model=WhoAmIOut,
        handler=whoami,
        scopes=frozenset(),
        method="GET",
        path="/me",
        mutates=False,
        idempotent=True,
        examples=(Example({}),),
    ),
)
