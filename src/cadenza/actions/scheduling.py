"""Read-modify-write of schedules, shared by every schedule-changing action.

Each change happens in one transaction: the endpoint row is read ``for_update`` (so a
worker's completion cannot interleave and overwrite it), the pure transition from
``cadenza.domain.lifecycle`` replans it, the audit event is written beside it, and
after commit the scheduler is woken so a tightened schedule takes effect now.
Archived endpoints and jobs refuse schedule changes with ``Archived``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import Field

from cadenza.actions.base import Context, record
from cadenza.actions.wire import Output, PlanOut
from cadenza.domain import errors
from cadenza.domain.governor import plan_next_run
from cadenza.domain.lifecycle import replan
from cadenza.domain.model import Endpoint, Job, PlanSource
from cadenza.ports import Tx

Transition = Callable[[Endpoint, Job, datetime], Endpoint]


class ScheduleChangeOut(Output):
    """The endpoint's schedule after a change, and why it is what it is."""

    endpoint_id: str
    previous_next_run_at: datetime | None = Field(description="next_run_at before the change.")
    plan: PlanOut = Field(description="The new plan with the governor's explanation.")
    audit_event_id: str


class EndpointScheduleOut(Output):
    endpoint_id: str
    next_run_at: datetime | None
    next_run_source: PlanSource | None


@dataclass(frozen=True, slots=True)
class Change:
    """What an action asks for: its name, the transition and what to record."""

    action: str
    transition: Transition
    reason: str
    changes: Mapping[str, Any]


def refuse_archived(endpoint: Endpoint, job: Job) -> None:
    if endpoint.archived:
        raise errors.Archived(f"Endpoint {endpoint.id!r} is archived; its schedule is frozen.")
    if job.archived:
        raise errors.Archived(f"Job {job.id!r} is archived; its schedules are frozen.")


async def change_endpoint(ctx: Context, endpoint_id: str, change: Change) -> ScheduleChangeOut:
    """Apply ``change`` to one endpoint under a row lock, audit it, then wake the scheduler."""
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, endpoint_id, for_update=True)
        job = await tx.get_job(ctx.tenant_id, endpoint.job_id)
        refuse_archived(endpoint, job)
        updated = replace(change.transition(endpoint, job, now), updated_at=now)
        await tx.update_endpoint(updated)
        event = await record(
            ctx, tx, change.action, ("endpoint", endpoint.id), change.reason, change.changes
        )
    ctx.services.waker.wake()
    return ScheduleChangeOut(
        endpoint_id=endpoint.id,
        previous_next_run_at=endpoint.next_run_at,
        plan=PlanOut.of(plan_next_run(now, updated, job)),
        audit_event_id=event.id,
    )


async def replan_job_endpoints(
    ctx: Context, tx: Tx, job: Job, now: datetime
) -> list[EndpointScheduleOut]:
    """Replan every live endpoint of ``job`` (already changed by the caller) in ``tx``."""
    results: list[EndpointScheduleOut] = []
    cursor: str | None = None
    while True:
        page = await tx.list_endpoints(
            ctx.tenant_id, job.id, include_archived=False, cursor=cursor, limit=200
        )
        for listed in page.items:
            endpoint = await tx.get_endpoint(ctx.tenant_id, listed.id, for_update=True)
            updated = replan(endpoint, job, now)
            await tx.update_endpoint(updated)
            results.append(
                EndpointScheduleOut(
                    endpoint_id=updated.id,
                    next_run_at=updated.next_run_at,
                    next_run_source=updated.next_run_source,
                )
            )
        if page.next_cursor is None:
            return results
        cursor = page.next_cursor
