"""Incidents of the caller's tenant, and the deliveries of their notices."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cadenza.actions.alerts import DeliveryOut, action, notify_store
from cadenza.actions.base import Context, Example
from cadenza.actions.wire import EXAMPLE_IDS, Cursor, Input, Output, PageLimit, id_field
from cadenza.domain import limits
from cadenza.domain.alerts import Incident
from cadenza.domain.identity import Scope

_READ = frozenset({Scope.RUNS_READ})
INCIDENT_ID = EXAMPLE_IDS["incident_id"]


class IncidentOut(Output):
    id: str
    rule_id: str
    subject: str = Field(description="The endpoint id, worker:<id> or backlog.")
    title: str
    detail: str
    opened_at: datetime
    notified_at: datetime
    resolved_at: datetime | None = Field(description="null: still open.")
    notifications: int

    @classmethod
    def of(cls, i: Incident) -> IncidentOut:
        return cls(
            id=i.id,
            rule_id=i.rule_id,
            subject=i.subject,
            title=i.title,
            detail=i.detail,
            opened_at=i.opened_at,
            notified_at=i.notified_at,
            resolved_at=i.resolved_at,
            notifications=i.notifications,
        )


class ListIncidentsInput(Input):
    open_only: bool = False
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class IncidentPage(Output):
    items: list[IncidentOut]
    next_cursor: str | None


async def list_incidents(ctx: Context, data: ListIncidentsInput) -> IncidentPage:
    page = await notify_store(ctx).list_incidents(
        ctx.tenant_id, open_only=data.open_only, cursor=data.cursor, limit=data.limit
    )
    return IncidentPage(items=[IncidentOut.of(i) for i in page.items], next_cursor=page.next_cursor)


class IncidentRef(Input):
    incident_id: str = id_field("incident", INCIDENT_ID)


class IncidentDetail(IncidentOut):
    deliveries: list[DeliveryOut] = Field(description="Every notice sent, oldest first.")


async def get_incident(ctx: Context, data: IncidentRef) -> IncidentDetail:
    store = notify_store(ctx)
    incident = await store.get_incident(ctx.tenant_id, data.incident_id)
    deliveries = await store.list_deliveries(ctx.tenant_id, incident.id)
    return IncidentDetail(
        **IncidentOut.of(incident).model_dump(),
        deliveries=[DeliveryOut.of(d) for d in deliveries],
    )


ACTIONS = (
    action(
        "list_incidents",
        "List incidents",
        "Alert incidents, newest first; open_only for the current ones.",
        input_model=ListIncidentsInput,
        output_model=IncidentPage,
        handler=list_incidents,
        scopes=_READ,
        method="GET",
        path="/incidents",
        mutates=False,
        idempotent=True,
        tags=("alerts",),
        examples=(Example({"open_only": True}),),
    ),
    action(
        "get_incident",
        "Get an incident and its deliveries",
        "One incident with each notice delivered (or failed) per channel.",
        input_model=IncidentRef,
        output_model=IncidentDetail,
        handler=get_incident,
        scopes=_READ,
        method="GET",
        path="/incidents/{incident_id}",
        mutates=False,
        idempotent=True,
        tags=("alerts",),
        examples=(Example({"incident_id": INCIDENT_ID}),),
    ),
)
