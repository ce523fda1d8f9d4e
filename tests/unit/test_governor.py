"""The governor against SCHEDULING.md §2, rule by rule.

Most cases plan at ``T0`` (Monday noon UTC) for an endpoint that runs every 10
minutes; each case changes only what its rule needs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from domain_builders import (
    T0,
    at,
    cron,
    every,
    interval_hint,
    make_endpoint,
    make_job,
    make_run,
    minutes,
    one_shot,
    pause,
    ran,
    rules,
)

from cadenza.domain import lifecycle
from cadenza.domain.governor import jitter_offset, missed_slots, plan_next_run, preview
from cadenza.domain.model import CatchUp, Endpoint, Guardrails, Job, OneShot, PlanSource, RunStatus
from cadenza.domain.schedule import IntervalSchedule

JOB = make_job()
HOURLY = every(timedelta(hours=1))
TWO_HOURS = every(timedelta(hours=2))


def plan(endpoint: Endpoint, job: Job = JOB) -> tuple[datetime | None, PlanSource]:
    result = plan_next_run(T0, endpoint, job)
    return result.next_run_at, result.source


# --- Every source of §2, one sentence each -------------------------------------------

SOURCES = [
    pytest.param(
        ran(make_endpoint(cron("0 * * * *")), at(-60)),
        JOB,
        at(60),
        PlanSource.BASELINE_CRON,
        id="a cron baseline runs at its next fire strictly after now",
    ),
    pytest.param(
        make_endpoint(cron("0 9 * * *", "Europe/Berlin")),
        JOB,
        at(20 * 60),
        PlanSource.BASELINE_CRON,
        id="a cron baseline fires at the wall-clock time of its zone",
    ),
    pytest.param(
        ran(make_endpoint(), at(-3)),
        JOB,
        at(7),
        PlanSource.BASELINE_INTERVAL,
        id="an interval baseline runs one interval after the last slot",
    ),
    pytest.param(
        make_endpoint(created_at=at(-2)),
        JOB,
        at(8),
        PlanSource.BASELINE_INTERVAL,
        id="a new interval endpoint first runs one interval after it was created",
    ),
    pytest.param(
        make_endpoint(every(minutes(10), start_at=at(60)), created_at=at(-2)),
        JOB,
        at(60),
        PlanSource.BASELINE_INTERVAL,
        id="a configured start time is the first slot of an interval",
    ),
    pytest.param(
        ran(make_endpoint(HOURLY, interval_hint=interval_hint(minutes(5), at(60))), at(-2)),
        JOB,
        at(3),
        PlanSource.HINT_INTERVAL,
        id="a fresh interval hint replaces the baseline counting from the last run",
    ),
    pytest.param(
        ran(
            make_endpoint(cron("0 0 * * *"), interval_hint=interval_hint(minutes(5), at(60))),
            at(-2),
        ),
        JOB,
        at(3),
        PlanSource.HINT_INTERVAL,
        id="a fresh interval hint replaces a cron baseline too",
    ),
    pytest.param(
        make_endpoint(HOURLY, created_at=at(-2), interval_hint=interval_hint(minutes(5), at(60))),
        JOB,
        at(5),
        PlanSource.HINT_INTERVAL,
        id="an interval hint on an endpoint that never ran counts from now",
    ),
    pytest.param(
        ran(make_endpoint(HOURLY, interval_hint=interval_hint(minutes(10), at(60))), at(-30)),
        JOB,
        at(0),
        PlanSource.HINT_INTERVAL,
        id="an interval hint already overdue since the last run runs now",
    ),
    pytest.param(
        ran(make_endpoint(one_shots=(one_shot(at(5)),)), at(-3)),
        JOB,
        at(5),
        PlanSource.HINT_ONE_SHOT,
        id="a one-shot before the next cadence run wins",
    ),
    pytest.param(
        ran(make_endpoint(one_shots=(one_shot(at(30)),)), at(-3)),
        JOB,
        at(7),
        PlanSource.BASELINE_INTERVAL,
        id="a cadence run before the one-shot still comes first",
    ),
    pytest.param(
        ran(make_endpoint(one_shots=(one_shot(at(-1)),)), at(-3)),
        JOB,
        at(0),
        PlanSource.HINT_ONE_SHOT,
        id="a fresh one-shot whose time has passed runs now",
    ),
    pytest.param(
        ran(make_endpoint(guardrails=Guardrails(min_interval=minutes(20))), at(-3)),
        JOB,
        at(17),
        PlanSource.CLAMPED_MIN,
        id="the minimum interval raises a candidate that comes too soon",
    ),
    pytest.param(
        ran(
            make_endpoint(cron("0 0 * * *"), guardrails=Guardrails(max_interval=minutes(60))),
            at(-10),
        ),
        JOB,
        at(50),
        PlanSource.CLAMPED_MAX,
        id="the maximum interval lowers a candidate that comes too late",
    ),
    pytest.param(
        ran(make_endpoint(pause=pause(at(120))), at(-3)),
        JOB,
        at(120),
        PlanSource.PAUSED,
        id="an endpoint paused until a time runs at that time",
    ),
    pytest.param(
        ran(make_endpoint(pause=pause(None)), at(-3)),
        JOB,
        None,
        PlanSource.PAUSED,
        id="an endpoint paused indefinitely is not scheduled",
    ),
    pytest.param(
        ran(make_endpoint(), at(-3)),
        make_job(pause=pause(at(120))),
        at(120),
        PlanSource.PAUSED,
        id="an endpoint of a job paused until a time runs at that time",
    ),
    pytest.param(
        ran(make_endpoint(), at(-3)),
        make_job(pause=pause(None)),
        None,
        PlanSource.PAUSED,
        id="an endpoint of a job paused indefinitely is not scheduled",
    ),
    pytest.param(
        make_endpoint(archived_at=at(-1)),
        JOB,
        None,
        PlanSource.ARCHIVED,
        id="an archived endpoint is not scheduled",
    ),
    pytest.param(
        make_endpoint(),
        make_job(archived_at=at(-1)),
        None,
        PlanSource.ARCHIVED,
        id="an endpoint of an archived job is not scheduled",
    ),
]


@pytest.mark.parametrize(("endpoint", "job", "expected", "source"), SOURCES)
def test_each_source_of_the_plan(
    endpoint: Endpoint, job: Job, expected: datetime | None, source: PlanSource
) -> None:
    result = plan_next_run(T0, endpoint, job)
    assert (result.next_run_at, result.source) == (expected, source)
    assert source.value in rules(result)


# --- Backoff -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "factor"),
    [(n, min(2**n, 32)) for n in range(11)],
    ids=[f"{n} consecutive failures stretch the interval x{min(2**n, 32)}" for n in range(11)],
)
def test_consecutive_failures_stretch_an_interval_up_to_32_times(
    failures: int, factor: int
) -> None:
    endpoint = ran(make_endpoint(every(minutes(1))), T0, failure_count=failures)
    result = plan_next_run(T0, endpoint, JOB)
    assert result.next_run_at == T0 + minutes(factor)
    assert ("backoff" in rules(result)) is (failures > 0)


def test_failures_do_not_stretch_a_cron_baseline() -> None:
    endpoint = ran(make_endpoint(cron("*/5 * * * *")), T0, failure_count=4)
    assert plan(endpoint) == (at(5), PlanSource.BASELINE_CRON)


def test_failures_do_not_stretch_an_interval_hint() -> None:
    hint = interval_hint(minutes(2), at(60))
    endpoint = ran(make_endpoint(interval_hint=hint), T0, failure_count=4)
    assert plan(endpoint) == (at(2), PlanSource.HINT_INTERVAL)


# --- Clamps bound every source -------------------------------------------------------

EARLY_SOURCES = [
    pytest.param(make_endpoint(cron("*/5 * * * *")), id="a cron fire"),
    pytest.param(make_endpoint(every(minutes(5))), id="an interval slot"),
    pytest.param(make_endpoint(every(minutes(1)), failure_count=2), id="a backed-off slot"),
    pytest.param(
        make_endpoint(HOURLY, interval_hint=interval_hint(minutes(2), at(60))),
        id="an interval hint",
    ),
    pytest.param(make_endpoint(HOURLY, one_shots=(one_shot(at(1)),)), id="a one-shot"),
]


@pytest.mark.parametrize("endpoint", EARLY_SOURCES)
def test_the_minimum_interval_raises_every_source(endpoint: Endpoint) -> None:
    rails = Guardrails(min_interval=minutes(20))
    result = plan_next_run(T0, ran(endpoint, T0, guardrails=rails), JOB)
    assert (result.next_run_at, result.source) == (at(20), PlanSource.CLAMPED_MIN)


def test_the_minimum_interval_holds_back_a_catch_up_run() -> None:
    rails = Guardrails(min_interval=minutes(20))
    endpoint = ran(make_endpoint(guardrails=rails), at(-60), last_run_at=at(-5))
    assert plan(endpoint) == (at(15), PlanSource.CLAMPED_MIN)


LATE_SOURCES = [
    pytest.param(make_endpoint(cron("0 0 * * *")), id="a cron fire"),
    pytest.param(make_endpoint(TWO_HOURS), id="an interval slot"),
    pytest.param(make_endpoint(every(minutes(10)), failure_count=3), id="a backed-off slot"),
    pytest.param(
        make_endpoint(TWO_HOURS, interval_hint=interval_hint(minutes(50), at(600))),
        id="an interval hint",
    ),
    pytest.param(make_endpoint(TWO_HOURS, one_shots=(one_shot(at(45)),)), id="a one-shot"),
]


@pytest.mark.parametrize("endpoint", LATE_SOURCES)
def test_the_maximum_interval_lowers_every_source(endpoint: Endpoint) -> None:
    rails = Guardrails(max_interval=minutes(30))
    result = plan_next_run(T0, ran(endpoint, T0, guardrails=rails), JOB)
    assert (result.next_run_at, result.source) == (at(30), PlanSource.CLAMPED_MAX)


def test_clamps_wait_for_a_first_run() -> None:
    rails = Guardrails(min_interval=minutes(20), max_interval=minutes(30))
    endpoint = make_endpoint(TWO_HOURS, created_at=at(-1), guardrails=rails)
    assert plan(endpoint) == (at(119), PlanSource.BASELINE_INTERVAL)


def test_a_maximum_interval_long_past_runs_now() -> None:
    rails = Guardrails(max_interval=minutes(30))
    endpoint = ran(make_endpoint(cron("0 0 * * *"), guardrails=rails), at(-45))
    result = plan_next_run(T0, endpoint, JOB)
    assert result.next_run_at == T0
    assert rules(result)[-3:] == ["clamped-max", "not-in-past", "chosen"]


# --- Pause wins ----------------------------------------------------------------------

WOULD_RUN_NOW = [
    pytest.param(ran(make_endpoint(), at(-35)), id="a catch-up run"),
    pytest.param(ran(make_endpoint(one_shots=(one_shot(at(0)),)), at(-3)), id="a due one-shot"),
    pytest.param(
        ran(make_endpoint(HOURLY, interval_hint=interval_hint(minutes(1), at(60))), at(-3)),
        id="an overdue interval hint",
    ),
    pytest.param(
        ran(
            make_endpoint(cron("0 0 * * *"), guardrails=Guardrails(max_interval=minutes(1))), at(-3)
        ),
        id="a maximum interval",
    ),
]


@pytest.mark.parametrize("endpoint", WOULD_RUN_NOW)
@pytest.mark.parametrize("owner", ["endpoint", "job"])
def test_a_bounded_pause_wins_over(endpoint: Endpoint, owner: str) -> None:
    endpoint, job = _paused(endpoint, owner, at(90))
    assert plan(endpoint, job) == (at(90), PlanSource.PAUSED)


@pytest.mark.parametrize("endpoint", WOULD_RUN_NOW)
@pytest.mark.parametrize("owner", ["endpoint", "job"])
def test_an_indefinite_pause_wins_over(endpoint: Endpoint, owner: str) -> None:
    endpoint, job = _paused(endpoint, owner, None)
    assert plan(endpoint, job) == (None, PlanSource.PAUSED)


def _paused(endpoint: Endpoint, owner: str, until: datetime | None) -> tuple[Endpoint, Job]:
    if owner == "endpoint":
        return replace(endpoint, pause=pause(until)), JOB
    return endpoint, make_job(pause=pause(until))


def test_a_pause_that_has_ended_is_ignored() -> None:
    endpoint = ran(make_endpoint(pause=pause(at(0))), at(-3))
    assert plan(endpoint) == (at(7), PlanSource.BASELINE_INTERVAL)


def test_a_job_paused_indefinitely_outweighs_an_endpoint_paused_until_a_time() -> None:
    endpoint = ran(make_endpoint(pause=pause(at(30))), at(-3))
    assert plan(endpoint, make_job(pause=pause(None))) == (None, PlanSource.PAUSED)


def test_of_two_bounded_pauses_the_later_end_binds() -> None:
    endpoint = ran(make_endpoint(pause=pause(at(30))), at(-3))
    assert plan(endpoint, make_job(pause=pause(at(90)))) == (at(90), PlanSource.PAUSED)
    endpoint = ran(make_endpoint(pause=pause(at(90))), at(-3))
    assert plan(endpoint, make_job(pause=pause(at(30)))) == (at(90), PlanSource.PAUSED)


def test_archiving_wins_over_a_pause() -> None:
    endpoint = make_endpoint(pause=pause(at(30)), archived_at=at(-1))
    assert plan(endpoint) == (None, PlanSource.ARCHIVED)


# --- Expired hints -------------------------------------------------------------------


def test_an_expired_interval_hint_is_ignored() -> None:
    endpoint = ran(make_endpoint(interval_hint=interval_hint(minutes(1), at(-1))), at(-3))
    result = plan_next_run(T0, endpoint, JOB)
    assert (result.next_run_at, result.source) == (at(7), PlanSource.BASELINE_INTERVAL)
    assert "hint-expired" in rules(result)


def test_a_hint_expiring_exactly_now_is_already_expired() -> None:
    endpoint = ran(make_endpoint(interval_hint=interval_hint(minutes(1), T0)), at(-3))
    assert plan(endpoint) == (at(7), PlanSource.BASELINE_INTERVAL)


def test_an_expired_one_shot_is_ignored() -> None:
    shot = one_shot(at(-10), expires_at=at(-1))
    result = plan_next_run(T0, ran(make_endpoint(one_shots=(shot,)), at(-3)), JOB)
    assert (result.next_run_at, result.source) == (at(7), PlanSource.BASELINE_INTERVAL)
    assert "one-shot-expired" in rules(result)


def test_a_one_shot_that_would_run_after_it_expires_is_ignored() -> None:
    shot = one_shot(at(5), expires_at=at(4))
    result = plan_next_run(T0, ran(make_endpoint(one_shots=(shot,)), at(-3)), JOB)
    assert (result.next_run_at, result.source) == (at(7), PlanSource.BASELINE_INTERVAL)
    assert "one-shot-unreachable" in rules(result)


def test_a_relaxing_hint_does_not_outlive_its_expiry() -> None:
    # Every 10 minutes, relaxed to 2 hours for one hour: the baseline is back after
    # that hour, and the slots it missed collapse into one run at the expiry.
    hint = interval_hint(timedelta(hours=2), at(60))
    result = plan_next_run(T0, ran(make_endpoint(interval_hint=hint), T0), JOB)
    assert (result.next_run_at, result.source) == (at(60), PlanSource.BASELINE_INTERVAL)
    assert rules(result) == ["baseline-interval", "hint-interval", "hint-lapses", "chosen"]
    hinted = next(s.candidate for s in result.explanation if s.rule == "hint-interval")
    assert hinted == at(120)


def test_a_relaxing_hint_on_a_cron_resumes_at_the_first_fire_after_expiry() -> None:
    hint = interval_hint(timedelta(hours=6), at(90))
    endpoint = ran(make_endpoint(cron("0 * * * *"), interval_hint=hint), T0)
    assert plan(endpoint) == (at(120), PlanSource.BASELINE_CRON)


def test_a_tightening_hint_with_no_run_before_its_expiry_leaves_the_baseline() -> None:
    hint = interval_hint(minutes(10), at(5))
    endpoint = ran(make_endpoint(HOURLY, interval_hint=hint), T0)
    assert plan(endpoint) == (at(60), PlanSource.BASELINE_INTERVAL)


# --- A tightening takes effect at once ----------------------------------------------


def test_a_tightening_hint_moves_the_next_run_earlier_at_once() -> None:
    endpoint = lifecycle.replan(ran(make_endpoint(HOURLY), at(-20)), JOB, T0)
    assert endpoint.next_run_at == at(40)
    hint = interval_hint(minutes(30), at(120))
    tightened = lifecycle.with_interval_hint(endpoint, JOB, hint, T0)
    assert (tightened.next_run_at, tightened.next_run_source) == (at(10), PlanSource.HINT_INTERVAL)


def test_a_tightening_below_the_time_since_the_last_run_runs_now() -> None:
    endpoint = lifecycle.replan(ran(make_endpoint(HOURLY), at(-20)), JOB, T0)
    hint = interval_hint(minutes(5), at(120))
    assert lifecycle.with_interval_hint(endpoint, JOB, hint, T0).next_run_at == T0


# --- One-shots are consumed by a run at or after their time --------------------------


@pytest.mark.parametrize(
    ("started", "consumed"),
    [
        pytest.param(at(5), True, id="a run starting exactly at run_at consumes the one-shot"),
        pytest.param(at(6), True, id="a run starting after run_at consumes the one-shot"),
        pytest.param(at(4), False, id="a run starting before run_at leaves the one-shot"),
    ],
)
def test_a_one_shot_is_consumed_by_a_run_at_or_after_its_time(
    started: datetime, consumed: bool
) -> None:
    endpoint = ran(make_endpoint(one_shots=(one_shot(at(5)),)), at(-3))
    after = lifecycle.after_run(endpoint, JOB, make_run(endpoint, started), started)
    assert (after.one_shots == ()) is consumed


def test_a_consumed_one_shot_does_not_run_again() -> None:
    endpoint = ran(make_endpoint(one_shots=(one_shot(at(5)),)), at(-3))
    run = make_run(endpoint, at(5), source=PlanSource.HINT_ONE_SHOT)
    after = lifecycle.after_run(endpoint, JOB, run, at(5))
    assert (after.next_run_at, after.next_run_source) == (at(15), PlanSource.BASELINE_INTERVAL)


# --- Catch-up ------------------------------------------------------------------------


def test_missed_interval_slots_collapse_into_one_run_now() -> None:
    result = plan_next_run(T0, ran(make_endpoint(), at(-35)), JOB)
    assert (result.next_run_at, result.source) == (T0, PlanSource.BASELINE_INTERVAL)
    assert "catch-up" in rules(result)


def test_skipping_missed_slots_waits_for_the_next_slot_of_the_lattice() -> None:
    endpoint = ran(make_endpoint(catch_up=CatchUp.SKIP), at(-35))
    assert plan(endpoint) == (at(5), PlanSource.BASELINE_INTERVAL)


def test_skipping_runs_a_slot_that_falls_exactly_now() -> None:
    endpoint = ran(make_endpoint(catch_up=CatchUp.SKIP), at(-30))
    assert plan(endpoint) == (T0, PlanSource.BASELINE_INTERVAL)


def test_skipping_follows_the_backed_off_lattice() -> None:
    endpoint = ran(make_endpoint(catch_up=CatchUp.SKIP), at(-50), failure_count=1)
    assert plan(endpoint) == (at(10), PlanSource.BASELINE_INTERVAL)


def test_a_start_time_long_past_runs_once_now_or_joins_its_lattice() -> None:
    start = every(minutes(10), start_at=at(-125))
    assert plan(make_endpoint(start)) == (T0, PlanSource.BASELINE_INTERVAL)
    skipping = make_endpoint(start, catch_up=CatchUp.SKIP)
    assert plan(skipping) == (at(5), PlanSource.BASELINE_INTERVAL)


@pytest.mark.parametrize(
    ("endpoint", "scheduled_for", "missed"),
    [
        pytest.param(ran(make_endpoint(), at(-10)), T0, 0, id="a run on its own slot misses none"),
        pytest.param(ran(make_endpoint(), at(-35)), T0, 2, id="a catch-up run counts the others"),
        pytest.param(make_endpoint(), T0, 0, id="a first run misses nothing"),
        pytest.param(
            ran(make_endpoint(cron("0 * * * *")), at(-180)),
            T0,
            2,
            id="a late cron run counts the fires it collapses",
        ),
        pytest.param(
            ran(make_endpoint(cron("0 * * * *")), at(-60)),
            T0,
            0,
            id="an on-time cron run misses none",
        ),
    ],
)
def test_missed_slots_are_counted_on_the_run(
    endpoint: Endpoint, scheduled_for: datetime, missed: int
) -> None:
    assert missed_slots(endpoint, scheduled_for) == missed


# --- Jitter --------------------------------------------------------------------------


def test_jitter_is_deterministic_for_an_endpoint_and_slot() -> None:
    first = jitter_offset("ep-1", T0, minutes(10))
    assert first == jitter_offset("ep-1", T0, minutes(10))
    others = {jitter_offset(f"ep-{n}", T0, minutes(10)) for n in range(20)}
    assert len(others) > 1


def test_jitter_stays_within_zero_and_the_jitter() -> None:
    jitter = timedelta(seconds=7)
    offsets = [jitter_offset("ep-1", at(n), jitter) for n in range(500)]
    assert all(timedelta(0) <= offset < jitter for offset in offsets)
    assert len(set(offsets)) > 100


def test_no_jitter_means_no_offset() -> None:
    assert jitter_offset("ep-1", T0, timedelta(0)) == timedelta(0)


def test_jitter_shifts_the_first_interval_slot() -> None:
    endpoint = make_endpoint(created_at=at(-2), jitter=minutes(5))
    result = plan_next_run(T0, endpoint, JOB)
    assert result.next_run_at == at(8) + jitter_offset("ep-1", at(8), minutes(5))
    assert rules(result) == ["baseline-interval", "jitter", "chosen"]


def test_interval_slots_keep_their_jittered_phase_without_drifting() -> None:
    endpoint = make_endpoint(created_at=at(-2), jitter=minutes(5))
    starts = [p.next_run_at for p in preview(T0, endpoint, JOB, 6)]
    first = at(8) + jitter_offset("ep-1", at(8), minutes(5))
    assert starts == [first + minutes(10 * n) for n in range(6)]


def test_jitter_shifts_each_cron_fire() -> None:
    endpoint = make_endpoint(cron("0 * * * *"), jitter=minutes(10))
    for fire in (at(60), at(120), at(180)):
        result = plan_next_run(fire - minutes(30), endpoint, JOB)
        assert result.next_run_at == fire + jitter_offset("ep-1", fire, minutes(10))
        assert rules(result) == ["baseline-cron", "jitter", "chosen"]


def test_a_replan_between_a_cron_fire_and_its_jittered_time_keeps_that_fire() -> None:
    endpoint = ran(make_endpoint(cron("0 * * * *"), jitter=minutes(10)), at(-60))
    offset = jitter_offset("ep-1", T0, minutes(10))
    assert offset > timedelta(0)
    result = plan_next_run(T0 + offset / 2, endpoint, JOB)
    assert result.next_run_at == T0 + offset


def test_after_a_jittered_cron_run_the_next_fire_follows() -> None:
    offset = jitter_offset("ep-1", T0, minutes(10))
    endpoint = ran(make_endpoint(cron("0 * * * *"), jitter=minutes(10)), T0 + offset)
    result = plan_next_run(T0 + offset, endpoint, JOB)
    assert result.next_run_at == at(60) + jitter_offset("ep-1", at(60), minutes(10))


def test_jitter_leaves_an_interval_hint_exact() -> None:
    hint = interval_hint(minutes(5), at(60))
    endpoint = ran(make_endpoint(HOURLY, jitter=minutes(3), interval_hint=hint), at(-2))
    assert plan(endpoint) == (at(3), PlanSource.HINT_INTERVAL)


def test_jitter_leaves_a_one_shot_exact() -> None:
    endpoint = ran(make_endpoint(HOURLY, jitter=minutes(3), one_shots=(one_shot(at(4)),)), at(-2))
    assert plan(endpoint) == (at(4), PlanSource.HINT_ONE_SHOT)


def test_jitter_spreads_a_catch_up_run_by_the_missed_slot_not_by_now() -> None:
    endpoint = ran(make_endpoint(jitter=minutes(3)), at(-35))
    assert isinstance(endpoint.baseline, IntervalSchedule)
    missed = at(-35) + endpoint.baseline.every
    assert plan(endpoint)[0] == T0 + jitter_offset("ep-1", missed, minutes(3))


# --- Intervals longer than a 32-bit millisecond counter ------------------------------


@pytest.mark.parametrize(
    "days",
    [25, 30, 90, 399, 400],
    ids=[
        f"an interval of {d} days runs exactly {d} days after the last"
        for d in (25, 30, 90, 399, 400)
    ],
)
def test_long_intervals_do_not_overflow(days: int) -> None:
    span = timedelta(days=days)
    assert span // timedelta(milliseconds=1) > 2**31 - 1
    endpoint = ran(make_endpoint(every(span)), T0)
    assert plan(endpoint) == (T0 + span, PlanSource.BASELINE_INTERVAL)


def test_the_longest_interval_backs_off_to_32_times_without_overflow() -> None:
    endpoint = ran(make_endpoint(every(timedelta(days=399))), T0, failure_count=9)
    assert plan(endpoint)[0] == T0 + timedelta(days=399 * 32)


def test_a_long_interval_hint_is_honoured() -> None:
    hint = interval_hint(timedelta(days=90), T0 + timedelta(days=120))
    endpoint = ran(make_endpoint(every(timedelta(days=399)), interval_hint=hint), T0)
    assert plan(endpoint) == (T0 + timedelta(days=90), PlanSource.HINT_INTERVAL)


# --- The explanation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "job", "expected"),
    [
        pytest.param(
            ran(
                make_endpoint(
                    one_shots=(one_shot(at(5)),), guardrails=Guardrails(min_interval=minutes(20))
                ),
                at(-3),
            ),
            JOB,
            ["baseline-interval", "hint-one-shot", "clamped-min", "chosen"],
            id="a one-shot raised by the minimum interval explains both",
        ),
        pytest.param(
            ran(make_endpoint(jitter=minutes(1)), at(-95), failure_count=2),
            JOB,
            ["baseline-interval", "backoff", "catch-up", "jitter", "chosen"],
            id="a backed-off catch-up with jitter explains each step",
        ),
        pytest.param(
            ran(
                make_endpoint(cron("0 0 * * *"), interval_hint=interval_hint(minutes(5), at(60))),
                at(-1),
            ),
            make_job(pause=pause(at(30))),
            ["baseline-cron", "hint-interval", "paused"],
            id="a paused hinted cron explains the hint it overrides",
        ),
        pytest.param(
            ran(make_endpoint(interval_hint=interval_hint(minutes(1), at(-1))), at(-3)),
            JOB,
            ["baseline-interval", "hint-expired", "chosen"],
            id="an expired hint is named as ignored",
        ),
    ],
)
def test_the_explanation_names_every_rule_applied(
    endpoint: Endpoint, job: Job, expected: list[str]
) -> None:
    result = plan_next_run(T0, endpoint, job)
    assert rules(result) == expected
    assert all(step.note for step in result.explanation)


def test_the_explanation_keeps_the_candidates_it_passed_over() -> None:
    endpoint = ran(make_endpoint(one_shots=(one_shot(at(5)),)), at(-3))
    candidates = {s.rule: s.candidate for s in plan_next_run(T0, endpoint, JOB).explanation}
    assert candidates["baseline-interval"] == at(7)
    assert candidates["hint-one-shot"] == at(5)
    assert candidates["chosen"] == at(5)


def test_the_explanation_tells_who_asked_for_a_hint_and_why() -> None:
    hint = interval_hint(minutes(5), at(60), reason="error rate is rising")
    result = plan_next_run(T0, ran(make_endpoint(interval_hint=hint), at(-3)), JOB)
    assert "error rate is rising" in next(
        s.note for s in result.explanation if s.rule == "hint-interval"
    )


# --- Preview -------------------------------------------------------------------------


def test_preview_lists_the_next_runs_assuming_each_succeeds() -> None:
    endpoint = ran(make_endpoint(), at(-3), failure_count=2)
    starts = [p.next_run_at for p in preview(T0, endpoint, JOB, 3)]
    assert starts == [at(37), at(47), at(57)]


def test_preview_runs_a_one_shot_once() -> None:
    endpoint = ran(make_endpoint(one_shots=(one_shot(at(5)),)), at(-3))
    plans = preview(T0, endpoint, JOB, 4)
    assert [p.source for p in plans].count(PlanSource.HINT_ONE_SHOT) == 1
    assert [p.next_run_at for p in plans] == [at(5), at(15), at(25), at(35)]


def test_preview_carries_on_after_a_bounded_pause() -> None:
    endpoint = ran(make_endpoint(pause=pause(at(60))), at(-3))
    plans = preview(T0, endpoint, JOB, 3)
    assert [(p.next_run_at, p.source) for p in plans] == [
        (at(60), PlanSource.PAUSED),
        (at(70), PlanSource.BASELINE_INTERVAL),
        (at(80), PlanSource.BASELINE_INTERVAL),
    ]


def test_preview_stops_at_a_plan_that_schedules_nothing() -> None:
    endpoint = ran(make_endpoint(pause=pause(None)), at(-3))
    assert [p.next_run_at for p in preview(T0, endpoint, JOB, 5)] == [None]


def test_preview_explains_each_plan() -> None:
    plans = preview(T0, ran(make_endpoint(), at(-3)), JOB, 3)
    assert all(rules(p)[-1] == "chosen" for p in plans)


def test_planning_after_a_failed_run_backs_off() -> None:
    endpoint = ran(make_endpoint(), at(-3))
    run = make_run(endpoint, at(7), RunStatus.FAILURE)
    after = lifecycle.after_run(endpoint, JOB, run, at(8))
    assert after.next_run_at == at(27)


def test_a_run_now_wins_over_the_cadence_and_is_held_only_by_guardrails() -> None:
    shot = OneShot("osh-now", T0, at(60), "check", run_now=True)
    endpoint = ran(make_endpoint(one_shots=(shot,)), at(-3))
    result = plan_next_run(T0, endpoint, JOB)
    assert (result.next_run_at, result.source) == (T0, PlanSource.RUN_NOW)
    cooled = replace(endpoint, guardrails=Guardrails(min_interval=minutes(5)))
    assert plan(cooled) == (at(2), PlanSource.CLAMPED_MIN)
    after = lifecycle.after_run(
        endpoint, JOB, make_run(endpoint, T0, source=PlanSource.RUN_NOW), T0
    )
    assert after.one_shots == ()
