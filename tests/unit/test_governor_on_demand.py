"""On-demand endpoints (``baseline=None``, issue #16 capability 1): the governor's
rules for them case by case, and the property that they never run on their own."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from domain_builders import (
    T0,
    at,
    interval_hint,
    make_job,
    make_run,
    minutes,
    on_demand,
    one_shot,
    pause,
    ran,
    rules,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.domain import lifecycle
from cadenza.domain.catchup import skips, standing_slot
from cadenza.domain.governor import missed_slots, plan_next_run, preview
from cadenza.domain.model import (
    CatchUp,
    Endpoint,
    Guardrails,
    IntervalHint,
    OneShot,
    Pause,
    PlanSource,
    RunStatus,
)

JOB = make_job()


def plan(endpoint: Endpoint, now: datetime = T0) -> tuple[datetime | None, PlanSource]:
    result = plan_next_run(now, endpoint, JOB)
    return result.next_run_at, result.source


CASES = [
    pytest.param(on_demand(), None, PlanSource.ON_DEMAND, id="never run, nothing asked: nothing"),
    pytest.param(
        ran(on_demand(), at(-600)), None, PlanSource.ON_DEMAND, id="ran long ago: still nothing"
    ),
    pytest.param(
        ran(on_demand(one_shots=(one_shot(at(5)),)), at(-60)),
        at(5),
        PlanSource.HINT_ONE_SHOT,
        id="a one-shot runs at its time",
    ),
    pytest.param(
        on_demand(one_shots=(OneShot("osh-now", T0, at(60), run_now=True),)),
        T0,
        PlanSource.RUN_NOW,
        id="a run-now runs now",
    ),
    pytest.param(
        ran(on_demand(one_shots=(one_shot(at(-30), at(30)),)), at(-600)),
        T0,
        PlanSource.HINT_ONE_SHOT,
        id="an overdue one-shot (downtime) runs once, now",
    ),
    pytest.param(
        ran(on_demand(one_shots=(one_shot(at(-30), at(-1)),)), at(-600)),
        None,
        PlanSource.ON_DEMAND,
        id="an expired one-shot asks nothing",
    ),
    pytest.param(
        ran(on_demand(interval_hint=interval_hint(minutes(5), at(60))), at(-2)),
        at(3),
        PlanSource.HINT_INTERVAL,
        id="an interval hint is a temporary cadence from the last run",
    ),
    pytest.param(
        on_demand(interval_hint=interval_hint(minutes(5), at(60))),
        at(5),
        PlanSource.HINT_INTERVAL,
        id="an interval hint on an endpoint that never ran counts from now",
    ),
    pytest.param(
        ran(on_demand(interval_hint=interval_hint(minutes(30), at(20))), at(-2)),
        None,
        PlanSource.ON_DEMAND,
        id="a hint whose next run falls after its expiry lapses into nothing",
    ),
    pytest.param(
        ran(on_demand(interval_hint=interval_hint(minutes(5), at(-1))), at(-30)),
        None,
        PlanSource.ON_DEMAND,
        id="an expired hint asks nothing",
    ),
    pytest.param(
        ran(on_demand(failure_count=4, one_shots=(one_shot(at(1)),)), at(-1)),
        at(1),
        PlanSource.HINT_ONE_SHOT,
        id="failures do not back off a one-shot (backoff stretches baselines only)",
    ),
    pytest.param(
        ran(on_demand(failure_count=9), at(-1)),
        None,
        PlanSource.ON_DEMAND,
        id="failures alone ask nothing",
    ),
    pytest.param(
        ran(
            on_demand(guardrails=Guardrails(min_interval=minutes(20)), one_shots=(one_shot(T0),)),
            at(-3),
        ),
        at(17),
        PlanSource.CLAMPED_MIN,
        id="the cooldown holds back a one-shot",
    ),
    pytest.param(
        ran(on_demand(guardrails=Guardrails(max_interval=minutes(20))), at(-3)),
        None,
        PlanSource.ON_DEMAND,
        id="the maximum interval creates no run",
    ),
    pytest.param(
        ran(
            on_demand(
                guardrails=Guardrails(max_interval=minutes(20)),
                one_shots=(one_shot(at(60), at(90)),),
            ),
            at(-3),
        ),
        at(60),
        PlanSource.HINT_ONE_SHOT,
        id="the maximum interval does not pull a one-shot in",
    ),
    pytest.param(
        ran(
            on_demand(
                guardrails=Guardrails(max_interval=minutes(20)),
                interval_hint=interval_hint(minutes(30), at(120)),
            ),
            at(-3),
        ),
        at(17),
        PlanSource.CLAMPED_MAX,
        id="the maximum interval bounds a hint's cadence",
    ),
    pytest.param(
        ran(on_demand(retry_after_until=at(10), one_shots=(one_shot(T0),)), at(-1)),
        at(10),
        PlanSource.HINT_ONE_SHOT,
        id="Retry-After holds a one-shot back",
    ),
    pytest.param(
        ran(
            on_demand(
                retry_after_until=at(60),
                guardrails=Guardrails(max_interval=minutes(20)),
                one_shots=(one_shot(T0),),
            ),
            at(-1),
        ),
        at(19),
        PlanSource.HINT_ONE_SHOT,
        id="Retry-After's hold is bounded by the maximum interval",
    ),
    pytest.param(
        ran(on_demand(retry_after_until=at(10)), at(-1)),
        None,
        PlanSource.ON_DEMAND,
        id="Retry-After alone asks nothing",
    ),
    pytest.param(
        on_demand(pause=pause(at(30))),
        None,
        PlanSource.PAUSED,
        id="a bounded pause with nothing pending plans nothing after it",
    ),
    pytest.param(
        on_demand(pause=pause(at(30)), one_shots=(one_shot(at(10), at(100)),)),
        at(30),
        PlanSource.PAUSED,
        id="a pending one-shot runs when a bounded pause ends",
    ),
    pytest.param(
        on_demand(pause=pause(at(30)), one_shots=(one_shot(at(50), at(100)),)),
        at(50),
        PlanSource.PAUSED,
        id="a one-shot after a bounded pause keeps its own time",
    ),
    pytest.param(
        on_demand(pause=pause(at(30)), one_shots=(one_shot(at(10), at(20)),)),
        None,
        PlanSource.PAUSED,
        id="a one-shot that expires before a bounded pause ends asks nothing",
    ),
    pytest.param(
        on_demand(pause=pause(at(30)), interval_hint=interval_hint(minutes(5), at(60))),
        at(35),
        PlanSource.PAUSED,
        id="a hint still fresh when a bounded pause ends counts from its end",
    ),
    pytest.param(
        on_demand(pause=pause(None), one_shots=(one_shot(at(10)),)),
        None,
        PlanSource.PAUSED,
        id="an indefinite pause wins",
    ),
    pytest.param(
        on_demand(
            catch_up=CatchUp.SKIP,
            jitter=timedelta(minutes=5),
            one_shots=(one_shot(at(-5), at(30)),),
        ),
        T0,
        PlanSource.HINT_ONE_SHOT,
        id="catch_up and jitter apply to baseline slots only",
    ),
]


@pytest.mark.parametrize(("endpoint", "expected", "source"), CASES)
def test_on_demand_rules(endpoint: Endpoint, expected: datetime | None, source: PlanSource) -> None:
    assert plan(endpoint) == (expected, source)


def test_the_plan_says_so_plainly() -> None:
    result = plan_next_run(T0, on_demand(), JOB)
    assert rules(result) == ["on-demand", "chosen"]
    assert "runs only when asked" in result.explanation[0].note
    assert "on demand" in result.explanation[-1].note.lower()


def test_a_hint_lapsing_says_nothing_follows() -> None:
    endpoint = ran(on_demand(interval_hint=interval_hint(minutes(30), at(20))), at(-2))
    result = plan_next_run(T0, endpoint, JOB)
    assert "hint-lapses" in rules(result)
    assert "nothing runs after it" in result.explanation[-2].note


def test_a_one_shot_runs_once_and_then_nothing() -> None:
    endpoint = lifecycle.replan(on_demand(one_shots=(one_shot(at(5)),)), JOB, T0)
    assert endpoint.next_run_at == at(5)
    run = make_run(endpoint, at(5), source=PlanSource.HINT_ONE_SHOT)
    after = lifecycle.after_run(endpoint, JOB, run, at(5))
    assert (after.next_run_at, after.next_run_source) == (None, PlanSource.ON_DEMAND)
    assert after.one_shots == ()


def test_a_failed_run_now_is_not_retried_on_its_own() -> None:
    endpoint = lifecycle.replan(
        on_demand(one_shots=(OneShot("osh-now", T0, at(60), run_now=True),)), JOB, T0
    )
    run = make_run(endpoint, T0, RunStatus.FAILURE, source=PlanSource.RUN_NOW)
    after = lifecycle.after_run(endpoint, JOB, run, at(1))
    assert after.failure_count == 1
    assert after.next_run_at is None


def test_a_hint_runs_its_cadence_until_it_expires_then_stops() -> None:
    endpoint = lifecycle.replan(
        on_demand(interval_hint=interval_hint(minutes(10), at(35))), JOB, T0
    )
    plans = preview(T0, endpoint, JOB, 6)
    assert [p.next_run_at for p in plans] == [at(10), at(20), at(30), None]
    assert plans[-1].source is PlanSource.ON_DEMAND


def test_no_slot_is_missed_caught_up_or_skipped() -> None:
    endpoint = ran(on_demand(catch_up=CatchUp.SKIP), at(-600))
    assert missed_slots(endpoint, T0) == 0
    assert standing_slot(endpoint, at(-5), T0) == at(-5)
    assert not skips(endpoint, PlanSource.BASELINE_INTERVAL, at(-500), T0)


# --- The property: no baseline and nothing pending → never due ---------------------

BOUNDED = settings(max_examples=400, deadline=None, database=None)
_OFFSETS = st.floats(-30 * 24 * 60, 30 * 24 * 60, allow_nan=False).map(at)


def _durations(low_s: float, high_s: float) -> st.SearchStrategy[timedelta]:
    return st.floats(low_s, high_s, allow_nan=False).map(lambda s: timedelta(seconds=s))


@st.composite
def idle_on_demand(draw: st.DrawFn) -> tuple[Endpoint, datetime]:
    """Any on-demand endpoint state and a ``now`` at which nothing it holds is
    fresh: no one-shot or hint, or only expired ones."""
    now = draw(_OFFSETS)
    low = draw(st.none() | _durations(1, 86400))
    high = draw(st.none() | _durations(1, 86400))
    if low is not None and high is not None and low > high:
        low, high = high, low
    last = draw(st.none() | _OFFSETS.filter(lambda t: t <= now))
    past = st.floats(0, 86400, allow_nan=False).map(lambda s: now - timedelta(seconds=s))
    expired = past.map(lambda t: (OneShot("osh-old", t - timedelta(hours=1), t),))
    shot = draw(st.just(()) | expired)
    hint = draw(st.none() | past.map(lambda t: IntervalHint(timedelta(minutes=5), t)))
    paused = draw(st.none() | st.none().map(lambda _: Pause(None)) | _OFFSETS.map(Pause))
    endpoint = on_demand(
        guardrails=Guardrails(low, high),
        catch_up=draw(st.sampled_from(list(CatchUp))),
        jitter=draw(_durations(0, 3600)),
        failure_count=draw(st.integers(0, 40)),
        one_shots=shot,
        interval_hint=hint,
        pause=paused,
        retry_after_until=draw(st.none() | _OFFSETS),
        last_status=draw(st.none() | st.sampled_from(list(RunStatus))),
    )
    if last is not None:
        endpoint = ran(endpoint, last)
    return endpoint, now


@BOUNDED
@given(idle_on_demand())
def test_an_on_demand_endpoint_never_runs_on_its_own(case: tuple[Endpoint, datetime]) -> None:
    endpoint, now = case
    assert plan_next_run(now, endpoint, JOB).next_run_at is None
    assert lifecycle.replan(endpoint, JOB, now).next_run_at is None
    assert all(p.next_run_at is None for p in preview(now, endpoint, JOB, 3))


@BOUNDED
@given(idle_on_demand(), st.sampled_from(list(RunStatus)), st.sampled_from(list(PlanSource)))
def test_after_any_run_nothing_more_runs_unless_asked(
    case: tuple[Endpoint, datetime], status: RunStatus, source: PlanSource
) -> None:
    endpoint, now = case
    run = replace(make_run(endpoint, now, status, source=source), finished_at=now)
    assert lifecycle.after_run(endpoint, JOB, run, now).next_run_at is None


def test_queued_one_shots_run_in_order_each_once_and_then_nothing() -> None:
    queue = (one_shot(at(5)), one_shot(at(20)), one_shot(at(60)))
    endpoint = lifecycle.replan(on_demand(one_shots=queue), JOB, T0)
    plans = preview(T0, endpoint, JOB, 5)
    assert [p.next_run_at for p in plans] == [at(5), at(20), at(60), None]
    assert plans[-1].source is PlanSource.ON_DEMAND
