"""The audit log: who changed what, when, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from cadenza.actions.base import Action, Context, Example
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    ActorOut,
    Cursor,
    Input,
    Output,
    PageLimit,
    UtcTime,
)
from cadenza.domain import limits
from cadenza.domain.identity import Scope
from cadenza.domain.model import AuditEvent
from cadenza.ports import AuditFilter


class AuditEventOut(Output):
    id: str
    at: datetime
    actor: ActorOut = Field(description="A user, an API key, an agent, the planner or the system.")
    action: str = Field(description="The action that made the change.", examples=["pause_job"])
    target_kind: str = Field(examples=["endpoint"])
    target_id: str
    reason: str
    changes: dict[str, Any] = Field(description="What changed, as the action recorded it.")

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            at=event.at,
            actor=ActorOut.of(event.actor),
            action=event.action,
            target_kind=event.target_kind,
            target_id=event.target_id,
            reason=event.reason,
            changes=event.changes,
        )


class ListAuditInput(Input):
    target_id: str | None = Field(None, max_length=64, description="Only events on this id.")
    actor_id: str | None = Field(None, max_length=64, description="Only events by this actor.")
    since: UtcTime | None = Field(None, description="Only events at or after this time.")
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class AuditPage(Output):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


async def list_audit_events(ctx: Context, data: ListAuditInput) -> AuditPage:
    flt = AuditFilter(target_id=data.target_id, actor_id=data.actor_id, since=data.since)
    async with ctx.store.transaction(readonly=True) as tx:
        page = await tx.list_audit(ctx.tenant_id, flt, cursor=data.cursor, limit=data.limit)
    return AuditPage(items=[AuditEventOut.of(e) for e in page.items], next_cursor=page.next_cursor)


ACTIONS = (
    Action(
        name="list_audit_events",
        summary="Who changed what, and why",
        description=(
            "Lists audit events, newest first: every change to jobs, endpoints, schedules and "
            "keys with its actor (user, API key, agent or planner) and reason. Filter by "
            "target_id (a job or endpoint id) to see one schedule's history. Keyset pages."
        ),
        input_model=ListAuditInput,
        output_model=AuditPage,
        handler=list_audit_events,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/audit",
        mutates=False,
        idempotent=True,
        examples=(
            Example(
                {"target_id": EXAMPLE_IDS["endpoint_id"], "limit": 20},
                "One endpoint's schedule history.",
            ),
        ),
    ),
)
