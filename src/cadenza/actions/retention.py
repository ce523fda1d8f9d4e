"""get_retention_policy / set_retention_policy: how long the tenant's history is kept.

The policy (``cadenza.domain.retention``) is applied by the retention housekeeper of
``cadenza serve`` (``cadenza.scheduler.retention``) at its next pass, in bounded
batches. Setting it replaces the whole policy (a limit left out keeps forever) and is
recorded in the audit log. Because it deletes history it needs ``keys:admin``, the
tenant-administration scope (``admin`` implies it), not ``jobs:write``: an agent
that steers jobs cannot erase their record.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cadenza.actions.base import Action, Context, Example, record
from cadenza.actions.wire import Input, Output, Reason
from cadenza.domain import errors
from cadenza.domain.identity import Scope
from cadenza.domain.retention import MAX_RETENTION_DAYS, MAX_RUNS_PER_ENDPOINT, RetentionPolicy
from cadenza.ports import RetentionStore


class NoPolicyInput(Input):
    """This action takes no input."""


class RetentionIn(Input):
    run_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    runs_per_endpoint: int | None = Field(None, ge=1, le=MAX_RUNS_PER_ENDPOINT)
    audit_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    reason: Reason = ""


class RetentionOut(Output):
    run_days: int | None
    runs_per_endpoint: int | None
    audit_days: int | None
    updated_at: datetime | None


def _store(ctx: Context) -> RetentionStore:
    if ctx.services.retention is None:
        raise errors.Conflict("Retention is not available on this server's store.")
    return ctx.services.retention


def _out(policy: RetentionPolicy | None) -> RetentionOut:
    if policy is None:
        return RetentionOut(run_days=None, runs_per_endpoint=None, audit_days=None, updated_at=None)
    return RetentionOut(
        run_days=policy.run_days,
        runs_per_endpoint=policy.runs_per_endpoint,
        audit_days=policy.audit_days,
        updated_at=policy.updated_at,
    )


async def get_retention_policy(ctx: Context, data: NoPolicyInput) -> RetentionOut:
    return _out(await _store(ctx).get_policy(ctx.tenant_id))


async def set_retention_policy(ctx: Context, data: RetentionIn) -> RetentionOut:
    store = _store(ctx)
    policy = RetentionPolicy(
        tenant_id=ctx.tenant_id,
        run_days=data.run_days,
        runs_per_endpoint=data.runs_per_endpoint,
        audit_days=data.audit_days,
        updated_at=ctx.now(),
    )
    await store.put_policy(policy)
    changes = data.model_dump(exclude={"reason"})
    async with ctx.store.transaction() as tx:
        await record(
            ctx, tx, "set_retention_policy", ("tenant", ctx.tenant_id), data.reason, changes
        )
    return _out(policy)


ACTIONS = (
    Action(
        name="get_retention_policy",
        summary="How long your runs and audit events are kept",
        description="Your retention policy; null limits keep forever.",
        input_model=NoPolicyInput,
        output_model=RetentionOut,
        handler=get_retention_policy,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/retention-policy",
        mutates=False,
        idempotent=True,
        examples=(Example({}),),
    ),
    Action(
        name="set_retention_policy",
        summary="Set how long runs and audit events are kept",
        description=(
            "Replaces your retention policy: runs older than run_days or beyond each "
            "endpoint's newest runs_per_endpoint, audit events older than audit_days are "
            "deleted in the background (null keeps)."
        ),
        input_model=RetentionIn,
        output_model=RetentionOut,
        handler=set_retention_policy,
        scopes=frozenset({Scope.KEYS_ADMIN}),
        method="PUT",
        path="/retention-policy",
        mutates=True,
        idempotent=True,
        destructive=True,
        examples=(Example({"run_days": 30, "runs_per_endpoint": 1000, "audit_days": 365}),),
    ),
)
