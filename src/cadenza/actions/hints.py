"""Schedule control: hints, pauses, resets, and the governor's explanation.

Hints are short-lived by design: each has a ttl and expires by itself, after which
the baseline rules again. Guardrails bound every hint. The planner may use the
actions flagged ``planner_tool``; pauses it writes are always time-bounded
(``limits.MAX_PLANNER_PAUSE``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from cadenza.actions.base import Action, Context, Example
from cadenza.actions.endpoint_models import IntervalSeconds
from cadenza.actions.endpoints import ENDPOINT_ID, EndpointChangeInput, EndpointRef
from cadenza.actions.scheduling import Change, ScheduleChangeOut, change_endpoint
from cadenza.actions.wire import EXAMPLE_IDS, Output, PlanOut, UtcTime, id_field, rfc3339
from cadenza.domain import errors, lifecycle, limits
from cadenza.domain.governor import explain_plan, preview
from cadenza.domain.identity import Scope
from cadenza.domain.model import ActorKind, Endpoint, IntervalHint, Job, OneShot, Pause, PlanSource
from cadenza.ids import new_id

_MAX_TTL_S = limits.MAX_HINT_TTL.total_seconds()
_DEFAULT_TTL_S = limits.DEFAULT_HINT_TTL.total_seconds()
_CONTROL = frozenset({Scope.SCHEDULE_CONTROL})
_ENDPOINT = EXAMPLE_IDS["endpoint_id"]


def _ttl_field() -> Any:
    return Field(
        _DEFAULT_TTL_S,
        gt=0,
        le=_MAX_TTL_S,
        description=f"Seconds the hint stays in force, at most {_MAX_TTL_S:g} (30 days).",
        examples=[3600],
    )


class IntervalHintInput(EndpointChangeInput):
    endpoint_id: str = ENDPOINT_ID
    interval_seconds: IntervalSeconds
    ttl_seconds: float = _ttl_field()


async def apply_interval_hint(ctx: Context, data: IntervalHintInput) -> ScheduleChangeOut:
    now = ctx.now()
    hint = IntervalHint(
        interval=timedelta(seconds=data.interval_seconds),
        expires_at=now + timedelta(seconds=data.ttl_seconds),
        reason=data.reason,
        actor=ctx.actor,
    )
    change = Change(
        "apply_interval_hint",
        lambda e, j, at: lifecycle.with_interval_hint(e, j, hint, at),
        data.reason,
        {"interval_seconds": data.interval_seconds, "expires_at": rfc3339(hint.expires_at)},
    )
    return await change_endpoint(ctx, data.endpoint_id, change)


class OneShotInput(EndpointChangeInput):
    """Give run_at or delay_seconds (or neither: as soon as possible)."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "properties": {"run_at": {"type": "string"}, "delay_seconds": {"type": "number"}},
                "required": ["run_at", "delay_seconds"],
            }
        }
    )

    run_at: UtcTime | None = Field(None, description="When to run once.")
    delay_seconds: float | None = Field(
        None, ge=0, le=_MAX_TTL_S, description="Run once this many seconds from now."
    )
    ttl_seconds: float = _ttl_field()

    @model_validator(mode="after")
    def _one_time(self) -> OneShotInput:
        if self.run_at is not None and self.delay_seconds is not None:
            raise ValueError("give run_at or delay_seconds, not both")
        return self


class OneShotChangeOut(ScheduleChangeOut):
    one_shot_id: str = Field(description="The queued one-shot (cancel_one_shot).")


async def queue_one_shot(
    ctx: Context, endpoint_id: str, change: Change, shot: OneShot
) -> OneShotChangeOut:
    """Apply ``change``, which queues ``shot``, and answer with the one-shot's id."""
    out = await change_endpoint(ctx, endpoint_id, change)
    return OneShotChangeOut(**dict(out), one_shot_id=shot.id)


async def schedule_one_shot_run(ctx: Context, data: OneShotInput) -> OneShotChangeOut:
    now = ctx.now()
    run_at = data.run_at or now + timedelta(seconds=data.delay_seconds or 0)
    expires_at = max(run_at, now) + timedelta(seconds=data.ttl_seconds)
    if run_at > now + limits.MAX_HINT_TTL:
        raise errors.InvalidHint(
            f"run_at is more than {limits.MAX_HINT_TTL.days} days away.", "run_at"
        )
    shot = OneShot(new_id("osh", now), run_at, expires_at, data.reason, ctx.actor)
    change = Change(
        "schedule_one_shot_run",
        lambda e, j, at: lifecycle.with_one_shot(e, j, shot, at),
        data.reason,
        {"one_shot_id": shot.id, "run_at": rfc3339(run_at), "expires_at": rfc3339(expires_at)},
    )
    return await queue_one_shot(ctx, data.endpoint_id, change, shot)


RUN_NOW_TTL = timedelta(hours=1)
"""A run-now not started within this (a long cooldown, a down scheduler) lapses."""


async def trigger_run(ctx: Context, data: EndpointChangeInput) -> OneShotChangeOut:
    """One run as soon as possible, recorded with source ``run-now``. It does not
    override a pause: a paused endpoint or job refuses it (resume first)."""
    now = ctx.now()
    shot = OneShot(new_id("osh", now), now, now + RUN_NOW_TTL, data.reason, ctx.actor, run_now=True)

    def transition(endpoint: Endpoint, job: Job, at: datetime) -> Endpoint:
        if endpoint.paused(at) or job.paused(at):
            owner = "endpoint" if endpoint.paused(at) else "job"
            raise errors.Conflict(
                f"The {owner} is paused; trigger_run does not override a pause: resume it first."
            )
        return lifecycle.with_one_shot(endpoint, job, shot, at)

    changes = {"one_shot_id": shot.id, "run_at": rfc3339(now)}
    change = Change("trigger_run", transition, data.reason, changes)
    return await queue_one_shot(ctx, data.endpoint_id, change, shot)


class CancelOneShotInput(EndpointChangeInput):
    one_shot_id: str = id_field("queued one-shot", EXAMPLE_IDS["one_shot_id"])


async def cancel_one_shot(ctx: Context, data: CancelOneShotInput) -> ScheduleChangeOut:
    shot_id = data.one_shot_id
    change = Change(
        "cancel_one_shot",
        lambda e, j, at: lifecycle.without_one_shot(e, j, shot_id, at),
        data.reason,
        {"one_shot_id": shot_id},
    )
    return await change_endpoint(ctx, data.endpoint_id, change)


class PauseEndpointInput(EndpointChangeInput):
    until: UtcTime | None = Field(
        None,
        description="Pause until this time; omitted or null: resume the endpoint now.",
        examples=["2030-01-01T06:00:00Z"],
    )


def _bounded_pause(ctx: Context, until: datetime, now: datetime) -> None:
    if until <= now:
        raise errors.InvalidHint("until must be in the future; send null to resume.", "until")
    if ctx.actor.kind is ActorKind.PLANNER and until > now + limits.MAX_PLANNER_PAUSE:
        hours = limits.MAX_PLANNER_PAUSE.total_seconds() / 3600
        raise errors.InvalidHint(f"The planner may pause for at most {hours:g} h.", "until")


async def pause_or_resume_endpoint(ctx: Context, data: PauseEndpointInput) -> ScheduleChangeOut:
    until = data.until
    if until is None:
        change = Change(
            "resume_endpoint", lambda e, j, at: lifecycle.resumed(e, j, at), data.reason, {}
        )
        return await change_endpoint(ctx, data.endpoint_id, change)
    _bounded_pause(ctx, until, ctx.now())
    pause = Pause(until=until, reason=data.reason, actor=ctx.actor)
    change = Change(
        "pause_endpoint",
        lambda e, j, at: lifecycle.paused(e, j, pause, at),
        data.reason,
        {"until": rfc3339(until)},
    )
    return await change_endpoint(ctx, data.endpoint_id, change)


async def clear_adaptive_hints(ctx: Context, data: EndpointChangeInput) -> ScheduleChangeOut:
    change = Change(
        "clear_adaptive_hints", lambda e, j, at: lifecycle.hints_cleared(e, j, at), data.reason, {}
    )
    return await change_endpoint(ctx, data.endpoint_id, change)


async def reset_failure_count(ctx: Context, data: EndpointChangeInput) -> ScheduleChangeOut:
    change = Change(
        "reset_failure_count",
        lambda e, j, at: lifecycle.failures_reset(e, j, at),
        data.reason,
        {},
    )
    return await change_endpoint(ctx, data.endpoint_id, change)


class ExplainInput(EndpointRef):
    preview: int = Field(
        5, ge=1, le=limits.MAX_PREVIEW, description="How many future runs to preview."
    )


class PreviewItem(Output):
    next_run_at: datetime | None
    source: PlanSource
    note: str = Field(description="The deciding rule's reasoning.")


class ExplainOut(Output):
    endpoint_id: str
    now: datetime = Field(description="The time the plan was computed for.")
    stored_next_run_at: datetime | None = Field(description="What the scheduler will use.")
    plan: PlanOut
    preview: list[PreviewItem] = Field(
        description="The next runs assuming each succeeds on time and no new hints arrive."
    )


async def explain_schedule(ctx: Context, data: ExplainInput) -> ExplainOut:
    now = ctx.now()
    async with ctx.store.transaction(readonly=True) as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
        job = await tx.get_job(ctx.tenant_id, endpoint.job_id)
    plan = explain_plan(now, endpoint, job)
    plans = [plan, *preview(now, endpoint, job, data.preview)[1:]]
    return ExplainOut(
        endpoint_id=endpoint.id,
        now=now,
        stored_next_run_at=endpoint.next_run_at,
        plan=PlanOut.of(plan),
        preview=[
            PreviewItem(
                next_run_at=p.next_run_at,
                source=p.source,
                note=p.explanation[-1].note if p.explanation else "",
            )
            for p in plans
        ],
    )


ACTIONS = (
    Action(
        name="apply_interval_hint",
        summary="Run an endpoint at a different interval for a while",
        description=(
            "Replaces the baseline with interval_seconds for ttl_seconds; the next run moves "
            "at once to last run + interval (not before now), within the guardrails. E.g. "
            "30 s for 1 h in an incident, or to back off."
        ),
        input_model=IntervalHintInput,
        output_model=ScheduleChangeOut,
        handler=apply_interval_hint,
        scopes=_CONTROL,
        method="POST",
        path="/endpoints/{endpoint_id}/hints/interval",
        mutates=True,
        idempotent=True,
        planner_tool=True,
        examples=(
            Example(
                {
                    "endpoint_id": _ENDPOINT,
                    "interval_seconds": 30,
                    "ttl_seconds": 3600,
                    "reason": "deploy in progress",
                },
                "Every 30 s for the next hour.",
            ),
        ),
    ),
    Action(
        name="schedule_one_shot_run",
        summary="Run an endpoint once at a given time",
        description=(
            "Queues one extra run at run_at or delay_seconds from now (neither: soon); "
            f"never replaces another (at most {limits.MAX_ONE_SHOTS}); wins if earlier than "
            "the cadence; void ttl_seconds after run_at; min interval applies."
        ),
        input_model=OneShotInput,
        output_model=OneShotChangeOut,
        handler=schedule_one_shot_run,
        scopes=_CONTROL,
        method="POST",
        path="/endpoints/{endpoint_id}/hints/one-shot",
        mutates=True,
        idempotent=False,
        planner_tool=True,
        examples=(
            Example(
                {"endpoint_id": _ENDPOINT, "delay_seconds": 60, "reason": "verify the fix"},
                "Once, a minute from now.",
            ),
        ),
    ),
    Action(
        name="trigger_run",
        summary="Run an endpoint once, now",
        description="One run soon as source run-now; refused while paused.",
        input_model=EndpointChangeInput,
        output_model=OneShotChangeOut,
        handler=trigger_run,
        scopes=_CONTROL,
        method="POST",
        path="/endpoints/{endpoint_id}/run-now",
        mutates=True,
        idempotent=False,
        planner_tool=False,
        examples=(
            Example(
                {"endpoint_id": _ENDPOINT, "reason": "check the fix"}, "Run it once, right now."
            ),
        ),
    ),
    Action(
        name="cancel_one_shot",
        summary="Cancel one queued one-shot",
        description="Removes one_shot_id (hints.one_shots of get_endpoint) from the queue.",
        input_model=CancelOneShotInput,
        output_model=ScheduleChangeOut,
        handler=cancel_one_shot,
        scopes=_CONTROL,
        method="DELETE",
        path="/endpoints/{endpoint_id}/hints/one-shot/{one_shot_id}",
        mutates=True,
        idempotent=True,
        examples=(Example({"endpoint_id": _ENDPOINT, "one_shot_id": EXAMPLE_IDS["one_shot_id"]}),),
    ),
    Action(
        name="pause_or_resume_endpoint",
        summary="Pause an endpoint until a time, or resume it",
        description=(
            "With until (future RFC 3339) no run before then; without, it resumes now. "
            "Planner pauses: 24 h at most."
        ),
        input_model=PauseEndpointInput,
        output_model=ScheduleChangeOut,
        handler=pause_or_resume_endpoint,
        scopes=_CONTROL,
        method="POST",
        path="/endpoints/{endpoint_id}/pause",
        mutates=True,
        idempotent=True,
        planner_tool=True,
        examples=(
            Example(
                {
                    "endpoint_id": _ENDPOINT,
                    "until": "2030-01-01T06:00:00Z",
                    "reason": "upstream maintenance",
                },
                "Pause until a time.",
            ),
            Example({"endpoint_id": _ENDPOINT, "reason": "upstream is back"}, "Resume now."),
        ),
    ),
    Action(
        name="clear_adaptive_hints",
        summary="Drop the interval hint and every one-shot",
        description=(
            "Removes the endpoint's interval hint and queued one-shots so the baseline "
            "schedule rules again at once. A pause stays (use pause_or_resume_endpoint)."
        ),
        input_model=EndpointChangeInput,
        output_model=ScheduleChangeOut,
        handler=clear_adaptive_hints,
        scopes=_CONTROL,
        method="DELETE",
        path="/endpoints/{endpoint_id}/hints",
        mutates=True,
        idempotent=True,
        planner_tool=True,
        examples=(Example({"endpoint_id": _ENDPOINT, "reason": "incident over"}),),
    ),
    Action(
        name="reset_failure_count",
        summary="Forget consecutive failures (ends backoff)",
        description=(
            "Sets the endpoint's consecutive failure count to zero, which ends the interval "
            "backoff (x2 per failure, at most x32) at once. Use after fixing the target."
        ),
        input_model=EndpointChangeInput,
        output_model=ScheduleChangeOut,
        handler=reset_failure_count,
        scopes=_CONTROL,
        method="POST",
        path="/endpoints/{endpoint_id}/reset-failures",
        mutates=True,
        idempotent=True,
        examples=(Example({"endpoint_id": _ENDPOINT, "reason": "target fixed"}),),
    ),
    Action(
        name="explain_schedule",
        summary="Why the next run is when it is",
        description=(
            "Returns the governor's plan for the endpoint now, every rule it applied in "
            "order (baseline, backoff, hints, clamps, pauses), and a preview of the next "
            f"runs (preview, at most {limits.MAX_PREVIEW}) assuming each succeeds on time."
        ),
        input_model=ExplainInput,
        output_model=ExplainOut,
        handler=explain_schedule,
        scopes=frozenset({Scope.JOBS_READ}),
        method="GET",
        path="/endpoints/{endpoint_id}/schedule",
        mutates=False,
        idempotent=True,
        examples=(Example({"endpoint_id": _ENDPOINT, "preview": 5}),),
    ),
)
