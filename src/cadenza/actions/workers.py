"""list_workers: the scheduler processes at work, and how much each holds.

Workers are shared by every tenant, so what a caller sees is scoped:

* every caller with ``runs:read`` sees each worker's id, host, pid, start and last
  heartbeat: whether anything is alive to run its schedules is every tenant's
  business, and the processes are the service's, not another tenant's data;
* ``runs_in_hand`` counts only the caller's own endpoints a worker has leased, so no
  tenant learns how busy the others are. This holds for ``admin`` keys too: that
  scope is every scope *of the tenant*, not a view over other tenants. The operator
  reads each worker's totals from its ``/metrics``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cadenza.actions.base import Action, Context, Example
from cadenza.actions.wire import Input, Output
from cadenza.domain.identity import Scope
from cadenza.ports import WorkerInfo


class ListWorkersInput(Input):
    """This action takes no input."""


class WorkerOut(Output):
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float = Field(description="Seconds since the last heartbeat.")
    runs_in_hand: int = Field(description="Your endpoints it holds leases on now.")


class WorkerList(Output):
    items: list[WorkerOut]


def _out(info: WorkerInfo, now: datetime, held: dict[str, int]) -> WorkerOut:
    return WorkerOut(
        id=info.id,
        host=info.host,
        pid=info.pid,
        started_at=info.started_at,
        heartbeat_at=info.heartbeat_at,
        heartbeat_age_seconds=max(0.0, (now - info.heartbeat_at).total_seconds()),
        runs_in_hand=held.get(info.id, 0),
    )


async def list_workers(ctx: Context, data: ListWorkersInput) -> WorkerList:
    workers = await ctx.store.list_workers()
    held = await ctx.store.leases_held(ctx.tenant_id)
    now = ctx.now()
    return WorkerList(items=[_out(w, now, held) for w in workers])


ACTIONS = (
    Action(
        name="list_workers",
        summary="Scheduler workers and their heartbeats",
        description=(
            "Scheduler processes, their last heartbeat (older than 1.5 heartbeat intervals, "
            "~8 s: dead) and how many of your runs each holds."
        ),
        input_model=ListWorkersInput,
        output_model=WorkerList,
        handler=list_workers,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/workers",
        mutates=False,
        idempotent=True,
        examples=(Example({}),),
    ),
)
