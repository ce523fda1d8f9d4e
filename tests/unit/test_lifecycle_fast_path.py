"""``after_run``'s shortcut for plain interval endpoints against the general rules.

``after_run`` plans the commonest endpoint (interval baseline, nothing else steering)
with ``governor.plain_interval_next`` instead of replanning a copy. Over random
endpoints, jobs, runs and moments, both must give the same endpoint, field for field.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain_builders import T0, make_endpoint, make_job, make_run
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.domain import lifecycle
from cadenza.domain.governor import plain_interval_next, plan_next_run
from cadenza.domain.model import (
    CatchUp,
    Endpoint,
    Guardrails,
    IntervalHint,
    Job,
    Lease,
    OneShot,
    Pause,
    PlanSource,
    Run,
    RunStatus,
    evolve,
)
from cadenza.domain.schedule import CronSchedule, IntervalSchedule

EXAMPLES = settings(max_examples=500, deadline=None, database=None)


def seconds(low: float, high: float) -> st.SearchStrategy[timedelta]:
    return st.floats(low, high, allow_nan=False).map(lambda s: timedelta(seconds=s))


def rarely(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """``None`` five times in six, so that many examples reach the shortcut."""
    return st.one_of(*[st.none()] * 5, strategy)


@st.composite
def cases(draw: st.DrawFn) -> tuple[datetime, Endpoint, Job, Run]:
    now = T0 + draw(seconds(-86400, 86400))
    every = draw(seconds(1, 7 * 86400))
    start = draw(st.none() | seconds(-86400, 86400).map(lambda d: T0 + d))
    baseline = draw(
        st.one_of(
            st.just(IntervalSchedule(every, start)),
            st.just(IntervalSchedule(every)),
            st.just(CronSchedule("*/15 * * * *", "Europe/Berlin")),
        )
    )
    previous = draw(st.none() | seconds(0, 30 * 86400).map(lambda d: now - d))
    slot = now - draw(seconds(-0.002, 40 * 86400))
    shot_at = now + draw(seconds(-3600, 3600))
    endpoint = make_endpoint(
        baseline,
        created_at=now - draw(seconds(0, 60 * 86400)),
        catch_up=draw(st.sampled_from(CatchUp)),
        jitter=draw(st.sampled_from([timedelta(0), timedelta(seconds=30), timedelta(hours=1)])),
        failure_count=draw(st.integers(0, 9)),
        success_streak=draw(st.integers(0, 3)),
        last_run_at=previous,
        last_scheduled_for=previous,
        guardrails=draw(st.sampled_from([Guardrails()] * 3 + [Guardrails(timedelta(minutes=5))])),
        interval_hint=draw(rarely(st.just(IntervalHint(timedelta(minutes=2), now + every)))),
        one_shot=draw(rarely(st.just(OneShot(shot_at, shot_at + timedelta(hours=1))))),
        pause=draw(rarely(st.sampled_from([Pause(None), Pause(now - every), Pause(now + every)]))),
        archived_at=draw(rarely(st.just(now - timedelta(days=1)))),
        lease=Lease("worker-1", now + timedelta(minutes=1), 4),
        attempt=draw(st.integers(1, 3)),
    )
    job = make_job(
        pause=draw(rarely(st.sampled_from([Pause(None), Pause(now - every), Pause(now + every)]))),
        archived_at=draw(rarely(st.just(now - timedelta(days=1)))),
    )
    status = draw(st.sampled_from(RunStatus))
    run = make_run(endpoint, slot + draw(seconds(0, 60)), status, scheduled_for=slot)
    return now, endpoint, job, run


def general_after_run(endpoint: Endpoint, job: Job, run: Run, now: datetime) -> Endpoint:
    """``after_run`` as the general rules define it: fold the run in, then replan."""
    shot = endpoint.one_shot
    if shot is not None and run.started_at >= shot.run_at:
        shot = None
    ok = run.status.ok
    updated = evolve(
        endpoint,
        one_shot=shot,
        last_run_at=run.started_at,
        last_scheduled_for=run.scheduled_for,
        last_status=run.status,
        failure_count=0 if ok else endpoint.failure_count + 1,
        success_streak=endpoint.success_streak + 1 if ok else 0,
        attempt=1,
        lease=None,
    )
    return lifecycle.replan(updated, job, now)


@EXAMPLES
@given(cases())
def test_after_run_equals_the_general_replan_field_for_field(
    case: tuple[datetime, Endpoint, Job, Run],
) -> None:
    now, endpoint, job, run = case
    assert lifecycle.after_run(endpoint, job, run, now) == general_after_run(
        endpoint, job, run, now
    )


@EXAMPLES
@given(cases())
def test_the_shortcut_answers_exactly_what_the_governor_plans(
    case: tuple[datetime, Endpoint, Job, Run],
) -> None:
    now, endpoint, job, run = case
    failures = 0 if run.status.ok else endpoint.failure_count + 1
    quick = plain_interval_next(now, endpoint, job, run.scheduled_for, failures)
    if quick is None:
        return
    planned = evolve(endpoint, last_scheduled_for=run.scheduled_for, failure_count=failures)
    plan = plan_next_run(now, planned, job)
    assert (quick, PlanSource.BASELINE_INTERVAL) == (plan.next_run_at, plan.source)


def test_the_shortcut_declines_whatever_else_steers_the_plan() -> None:
    now = T0
    plain = make_endpoint(last_scheduled_for=now, last_run_at=now)
    job = make_job()
    assert plain_interval_next(now, plain, job, now, 0) is not None
    steered = [
        (evolve(plain, interval_hint=IntervalHint(timedelta(minutes=2), now + timedelta(1))), job),
        (evolve(plain, pause=Pause(None)), job),
        (evolve(plain, guardrails=Guardrails(timedelta(minutes=1))), job),
        (evolve(plain, baseline=CronSchedule("0 * * * *")), job),
        (plain, make_job(pause=Pause(None))),
        (plain, make_job(archived_at=now)),
    ]
    for endpoint, owner in steered:
        assert plain_interval_next(now, endpoint, owner, now, 0) is None
