"""Cron baselines across daylight-saving changes (SCHEDULING.md §2 rule 2).

Transitions used, all in 2026:

- America/New_York springs forward on 8 March (02:00 EST → 03:00 EDT, 07:00 UTC)
  and falls back on 1 November (02:00 EDT → 01:00 EST, 06:00 UTC);
- Europe/Berlin springs forward on 29 March (02:00 CET → 03:00 CEST, 01:00 UTC)
  and falls back on 25 October (03:00 CEST → 02:00 CET, 01:00 UTC).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from domain_builders import cron, every, make_endpoint, make_job, make_run, ran

from cadenza.domain import lifecycle
from cadenza.domain.governor import plan_next_run, preview
from cadenza.domain.model import Endpoint, PlanSource

JOB = make_job()
NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"

SPRING = {NEW_YORK: date(2026, 3, 8), BERLIN: date(2026, 3, 29)}
FALL = {NEW_YORK: date(2026, 11, 1), BERLIN: date(2026, 10, 25)}
REPEATED_HOUR = {NEW_YORK: 1, BERLIN: 2}
"""The wall-clock hour that happens twice on the fall-back night."""


def local_noon_before(zone: str, day: date) -> datetime:
    """Noon of the day before ``day`` in ``zone``, as a UTC instant."""
    noon = datetime.combine(day - timedelta(days=1), time(12), ZoneInfo(zone))
    return noon.astimezone(UTC)


def wall(instant: datetime | None, zone: str) -> tuple[date, time]:
    assert instant is not None
    local = instant.astimezone(ZoneInfo(zone))
    return local.date(), local.time()


def new_cron_endpoint(expression: str, zone: str, created_at: datetime) -> Endpoint:
    return make_endpoint(cron(expression, zone), created_at=created_at, updated_at=created_at)


def run_like_the_scheduler(endpoint: Endpoint, now: datetime, until: datetime) -> list[datetime]:
    """Start every planned run on time, finish it 5 s later and replan, until ``until``.

    Between runs it also replans every 5 minutes, as writes by people or the planner
    would, so a plan computed at any moment of the night gets its chance to misfire.
    """
    current = lifecycle.replan(endpoint, JOB, now)
    starts: list[datetime] = []
    while now < until:
        due = current.next_run_at
        assert due is not None
        if due <= now + timedelta(minutes=5):
            starts.append(due)
            run = make_run(current, due, source=PlanSource.BASELINE_CRON)
            now = due + timedelta(seconds=5)
            current = lifecycle.after_run(current, JOB, run, now)
        else:
            now += timedelta(minutes=5)
            current = lifecycle.replan(current, JOB, now)
    return starts


# --- Spring forward: a time inside the gap runs once, right after the gap ------------


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_a_daily_time_inside_the_spring_gap_runs_once_right_after_the_gap(zone: str) -> None:
    gap_day = SPRING[zone]
    now = local_noon_before(zone, gap_day)
    endpoint = new_cron_endpoint("30 2 * * *", zone, now)
    plans = preview(now, endpoint, JOB, 3)
    assert [wall(p.next_run_at, zone) for p in plans] == [
        (gap_day, time(3, 0)),
        (gap_day + timedelta(days=1), time(2, 30)),
        (gap_day + timedelta(days=2), time(2, 30)),
    ]


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_the_spring_gap_day_has_exactly_one_run_of_a_daily_time_inside_it(zone: str) -> None:
    now = local_noon_before(zone, SPRING[zone])
    endpoint = new_cron_endpoint("30 2 * * *", zone, now)
    starts = run_like_the_scheduler(endpoint, now, now + timedelta(days=3))
    per_day = Counter(wall(s, zone)[0] for s in starts)
    assert set(per_day.values()) == {1}
    assert len(starts) == 3


# --- Fall back: a time inside the repeated hour runs once ----------------------------


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_a_daily_time_inside_the_repeated_hour_runs_once(zone: str) -> None:
    fall_day = FALL[zone]
    expression = f"30 {REPEATED_HOUR[zone]} * * *"
    now = local_noon_before(zone, fall_day)
    plans = preview(now, new_cron_endpoint(expression, zone, now), JOB, 3)
    starts = [p.next_run_at for p in plans]
    assert [wall(s, zone) for s in starts] == [
        (fall_day + timedelta(days=n), time(REPEATED_HOUR[zone], 30)) for n in range(3)
    ]
    first, second = starts[0], starts[1]
    assert first is not None
    assert second is not None
    assert second - first == timedelta(hours=25)


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_replanning_all_through_the_fall_back_night_never_runs_a_time_twice(zone: str) -> None:
    fall_day = FALL[zone]
    expression = f"30 {REPEATED_HOUR[zone]} * * *"
    now = local_noon_before(zone, fall_day)
    endpoint = new_cron_endpoint(expression, zone, now)
    starts = run_like_the_scheduler(endpoint, now, now + timedelta(days=3))
    per_day = Counter(wall(s, zone)[0] for s in starts)
    assert per_day[fall_day] == 1
    assert set(per_day.values()) == {1}


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_a_plan_made_inside_the_second_copy_of_the_hour_is_for_the_next_day(zone: str) -> None:
    # 15 minutes into the second copy of the repeated hour, the 30-past fire already
    # ran in the first copy. cronsim, walking wall-clock time, offers that first copy
    # again (now in the past), which would have become a second run "now".
    hour = REPEATED_HOUR[zone]
    fall_day = FALL[zone]
    first_copy = datetime.combine(fall_day, time(hour, 30, fold=0), ZoneInfo(zone))
    second_copy_quarter = datetime.combine(fall_day, time(hour, 15, fold=1), ZoneInfo(zone))
    now = second_copy_quarter.astimezone(UTC)
    assert now > first_copy.astimezone(UTC)
    endpoint = ran(new_cron_endpoint(f"30 {hour} * * *", zone, now), first_copy.astimezone(UTC))
    result = plan_next_run(now, endpoint, JOB)
    assert wall(result.next_run_at, zone) == (fall_day + timedelta(days=1), time(hour, 30))
    assert "not-in-past" not in [step.rule for step in result.explanation]


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_any_plan_over_the_fall_back_night_is_after_now(zone: str) -> None:
    start = local_noon_before(zone, FALL[zone]) + timedelta(hours=10)
    endpoint = new_cron_endpoint(f"30 {REPEATED_HOUR[zone]} * * *", zone, start)
    for step in range(0, 8 * 60, 5):
        now = start + timedelta(minutes=step)
        result = plan_next_run(now, endpoint, JOB)
        assert result.next_run_at is not None
        assert result.next_run_at > now


# --- Real-time crons across both transitions -----------------------------------------

REAL_TIME_CRONS = [
    pytest.param("0 * * * *", timedelta(hours=1), id="hourly"),
    pytest.param("@hourly", timedelta(hours=1), id="the hourly macro"),
    pytest.param("*/15 * * * *", timedelta(minutes=15), id="every 15 minutes"),
]


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
@pytest.mark.parametrize("transitions", [SPRING, FALL], ids=["spring forward", "fall back"])
@pytest.mark.parametrize(("expression", "spacing"), REAL_TIME_CRONS)
def test_a_frequent_cron_across_a_transition_gives_evenly_spaced_distinct_instants(
    zone: str, transitions: dict[str, date], expression: str, spacing: timedelta
) -> None:
    now = local_noon_before(zone, transitions[zone])
    count = int(timedelta(hours=36) / spacing)
    plans = preview(now, new_cron_endpoint(expression, zone, now), JOB, count)
    starts = [p.next_run_at for p in plans if p.next_run_at is not None]
    assert len(set(starts)) == count
    gaps = {b - a for a, b in pairwise(starts)}
    assert gaps == {spacing}


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_an_hourly_cron_fires_23_times_on_the_spring_day_and_25_on_the_fall_day(
    zone: str,
) -> None:
    for day, expected in ((SPRING[zone], 23), (FALL[zone], 25)):
        now = local_noon_before(zone, day)
        plans = preview(now, new_cron_endpoint("0 * * * *", zone, now), JOB, 60)
        on_day = [p for p in plans if wall(p.next_run_at, zone)[0] == day]
        assert len(on_day) == expected


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_midnight_daily_runs_once_per_local_day_across_both_transitions(zone: str) -> None:
    for day in (SPRING[zone], FALL[zone]):
        now = local_noon_before(zone, day)
        plans = preview(now, new_cron_endpoint("@daily", zone, now), JOB, 3)
        assert [wall(p.next_run_at, zone) for p in plans] == [
            (day + timedelta(days=n), time(0)) for n in range(3)
        ]


def test_an_interval_counts_real_time_not_wall_clock_time_across_a_transition() -> None:
    # A one-day interval is 24 real hours, so on the local clock it shifts by the
    # DST change; only a cron baseline follows the wall clock.
    now = local_noon_before(NEW_YORK, SPRING[NEW_YORK])
    endpoint = ran(make_endpoint(every(timedelta(days=1))), now)
    result = plan_next_run(now, endpoint, JOB)
    assert result.next_run_at == now + timedelta(hours=24)
    assert wall(result.next_run_at, NEW_YORK)[1] == time(13)
