"""Before an endpoint's first run, ``explain_schedule`` (the governor asked again at a
later ``now``) names the stored ``next_run_at`` for as long as that time is ahead
(issue 16.7): a catch-up's time and jitter do not depend on when it is asked. Once
that time has passed and nobody has claimed it, ``explain_plan`` names it as stored
(overdue) instead of "now"."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain_builders import T0, make_endpoint, make_job
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.domain import lifecycle
from cadenza.domain.governor import explain_plan, plan_next_run
from cadenza.domain.model import CatchUp, Endpoint, Lease
from cadenza.domain.schedule import Baseline, CronSchedule, IntervalSchedule

BOUNDED = settings(max_examples=300, deadline=None, database=None)


def seconds(low: float, high: float) -> st.SearchStrategy[timedelta]:
    return st.floats(low, high, allow_nan=False).map(lambda s: timedelta(seconds=s))


@st.composite
def baselines(draw: st.DrawFn) -> Baseline:
    if draw(st.booleans()):
        return CronSchedule(draw(st.sampled_from(["* * * * *", "*/15 * * * *", "30 2 * * *"])))
    every = draw(seconds(1, 86400))
    start = draw(st.none() | seconds(-10 * 86400, 86400).map(lambda d: T0 + d))
    return IntervalSchedule(every, start)


@st.composite
def fresh_endpoints(draw: st.DrawFn) -> Endpoint:
    """Never run; created (or last updated: the anchor) some time before ``T0``."""
    anchor = T0 - draw(seconds(0, 10 * 86400))
    return make_endpoint(
        draw(baselines()),
        created_at=anchor,
        updated_at=anchor,
        catch_up=draw(st.sampled_from(list(CatchUp))),
        jitter=draw(st.sampled_from([timedelta(0), timedelta(seconds=1)]) | seconds(0, 3600)),
    )


@BOUNDED
@given(fresh_endpoints(), st.floats(0, 1, exclude_max=True))
def test_explain_names_the_stored_next_run_until_it_is_due(
    endpoint: Endpoint, fraction: float
) -> None:
    job = make_job()
    stored = lifecycle.replan(endpoint, job, T0)
    assert stored.next_run_at is not None
    asked = T0 + (stored.next_run_at - T0) * fraction
    if asked >= stored.next_run_at:  # rounded up to the microsecond: due, not ahead
        asked = T0
    assert plan_next_run(asked, stored, job).next_run_at == stored.next_run_at


def test_a_catch_up_before_the_first_run_is_named_the_same_when_asked_later() -> None:
    start = T0 - timedelta(hours=2)
    endpoint = make_endpoint(
        IntervalSchedule(timedelta(minutes=10), start), jitter=timedelta(minutes=5)
    )
    stored = lifecycle.replan(endpoint, make_job(), T0)
    assert stored.next_run_at is not None
    assert stored.next_run_at > T0
    later = plan_next_run(T0 + (stored.next_run_at - T0) / 2, stored, make_job())
    assert later.next_run_at == stored.next_run_at


@BOUNDED
@given(fresh_endpoints(), seconds(0.000001, 10 * 86400))
def test_explain_names_the_stored_next_run_once_it_has_passed_unclaimed(
    endpoint: Endpoint, late: timedelta
) -> None:
    job = make_job()
    stored = lifecycle.replan(endpoint, job, T0)
    assert stored.next_run_at is not None
    asked = stored.next_run_at + late
    explained = explain_plan(asked, stored, job)
    assert (explained.next_run_at, explained.source) == (stored.next_run_at, stored.next_run_source)
    assert explained.explanation[-1].rule == "overdue"


def test_an_overdue_cron_fire_is_named_until_claimed_then_the_plan_looks_forward() -> None:
    job = make_job()
    stored = lifecycle.replan(make_endpoint(CronSchedule("0 * * * *"), created_at=T0), job, T0)
    assert stored.next_run_at == T0 + timedelta(hours=1)
    asked = T0 + timedelta(hours=1, minutes=20)
    assert explain_plan(asked, stored, job).next_run_at == stored.next_run_at
    claimed = replace(stored, lease=Lease("w1", asked + timedelta(minutes=1), 1))
    assert explain_plan(asked, claimed, job) == plan_next_run(asked, claimed, job)
