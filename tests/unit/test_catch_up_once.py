"""After downtime a ``run_once`` endpoint runs exactly once, carrying the count of the
slots it collapsed, then returns to its original lattice; every missed slot is counted
once, and slots skipped by failure backoff are not misses (issues #16.1 and #17.5)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from domain_builders import T0, at, cron, every, make_endpoint, make_job, make_run, pause, ran
from hypothesis import given
from hypothesis import strategies as st

from cadenza.domain import lifecycle
from cadenza.domain.catchup import standing_slot
from cadenza.domain.governor import missed_slots
from cadenza.domain.model import Endpoint, PlanSource, RunStatus
from cadenza.domain.schedule import IntervalSchedule

JOB = make_job()
HOURLY = cron("0 * * * *")


def run_at(endpoint: Endpoint, scheduled_for: datetime, started_at: datetime) -> Endpoint:
    """``endpoint`` after a successful baseline run of ``scheduled_for`` at ``started_at``."""
    source = (
        PlanSource.BASELINE_INTERVAL
        if isinstance(endpoint.baseline, IntervalSchedule)
        else PlanSource.BASELINE_CRON
    )
    run = make_run(endpoint, started_at, scheduled_for=scheduled_for, source=source)
    return lifecycle.after_run(endpoint, JOB, run, started_at + timedelta(seconds=1))


def counted(endpoint: Endpoint, scheduled_for: datetime, started_at: datetime) -> int:
    return missed_slots(endpoint, standing_slot(endpoint, scheduled_for, started_at))


CASES = [
    pytest.param(
        ran(make_endpoint(), at(-35)),
        at(-25),
        T0,
        (2, at(5)),
        id="a stale interval slot runs once, counts the others, keeps the lattice",
    ),
    pytest.param(
        ran(make_endpoint(), at(-10)),
        T0,
        T0,
        (0, at(10)),
        id="an on-time interval run misses nothing",
    ),
    pytest.param(
        ran(make_endpoint(), at(-20), failure_count=1),
        T0,
        T0,
        (0, at(10)),
        id="a slot stretched by backoff is not a miss",
    ),
    pytest.param(
        ran(make_endpoint(HOURLY), at(-180)),
        at(-120),
        T0 + timedelta(seconds=3),
        (2, at(60)),
        id="a stale cron fire runs once and the next fire stays on time",
    ),
]


@pytest.mark.parametrize(("endpoint", "scheduled_for", "started_at", "expected"), CASES)
def test_one_catch_up_run_then_the_original_lattice(
    endpoint: Endpoint,
    scheduled_for: datetime,
    started_at: datetime,
    expected: tuple[int, datetime],
) -> None:
    missed = counted(endpoint, scheduled_for, started_at)
    after = run_at(endpoint, scheduled_for, started_at)
    assert (missed, after.next_run_at) == expected
    assert after.next_run_source in (PlanSource.BASELINE_INTERVAL, PlanSource.BASELINE_CRON)


def test_the_run_after_a_catch_up_counts_no_missed_slot_again() -> None:
    stale_slots = [
        (ran(make_endpoint(), at(-35)), at(-25)),
        (ran(make_endpoint(HOURLY), at(-180)), at(-120)),
    ]
    for endpoint, stale in stale_slots:
        after = run_at(endpoint, stale, T0)
        assert after.next_run_at is not None
        assert counted(after, after.next_run_at, after.next_run_at) == 0


def test_resuming_after_a_long_pause_runs_once_then_keeps_the_lattice() -> None:
    held = lifecycle.paused(ran(make_endpoint(), at(-3)), JOB, pause(None), T0)
    back = lifecycle.resumed(held, JOB, at(120))
    assert back.next_run_at == at(120)
    after = run_at(back, at(120), at(120))
    assert after.next_run_at == at(127)


@given(
    every_minutes=st.integers(1, 60),
    down_slots=st.integers(0, 500),
    late_seconds=st.integers(0, 59),
    failures=st.integers(0, 3),
)
def test_downtime_gives_one_run_and_each_missed_slot_counted_once(
    every_minutes: int, down_slots: int, late_seconds: int, failures: int
) -> None:
    step = timedelta(minutes=every_minutes)
    endpoint = ran(make_endpoint(every(step)), T0, failure_count=failures)
    lattice = step * 2**failures
    stale = T0 + lattice
    started = stale + lattice * down_slots + timedelta(seconds=late_seconds) % lattice
    missed = counted(endpoint, stale, started)
    after = run_at(endpoint, stale, started)
    assert missed == down_slots
    assert after.next_run_at is not None
    # The next slot is on the original (success: unstretched) lattice and in the future.
    assert (after.next_run_at - T0) % step == timedelta(0)
    assert started < after.next_run_at <= started + step
    assert counted(after, after.next_run_at, after.next_run_at) == 0
    assert after.last_status is RunStatus.SUCCESS
