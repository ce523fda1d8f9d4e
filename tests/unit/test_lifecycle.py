"""State transitions of an endpoint: each returns a new endpoint, replanned at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from domain_builders import (
    T0,
    at,
    interval_hint,
    make_endpoint,
    make_job,
    make_run,
    minutes,
    one_shot,
    pause,
    ran,
)

from cadenza.domain import lifecycle
from cadenza.domain.model import Endpoint, Lease, PlanSource, RunStatus

JOB = make_job()


def scheduled(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` with ``next_run_at`` as the store would hold it at ``T0``."""
    return lifecycle.replan(endpoint, JOB, T0)


def leased(endpoint: Endpoint) -> Endpoint:
    return replace(endpoint, lease=Lease("worker-1", at(5), epoch=3), attempt=2)


# --- after_run -----------------------------------------------------------------------


def test_a_successful_run_resets_failures_and_extends_the_streak() -> None:
    endpoint = leased(ran(make_endpoint(), at(-3), failure_count=3, success_streak=0))
    run = make_run(endpoint, at(37), scheduled_for=at(37))
    after = lifecycle.after_run(endpoint, JOB, run, at(38))
    assert (after.failure_count, after.success_streak) == (0, 1)
    assert (after.last_run_at, after.last_scheduled_for) == (at(37), at(37))
    assert after.last_status is RunStatus.SUCCESS
    assert (after.lease, after.attempt) == (None, 1)
    assert (after.next_run_at, after.next_run_source) == (at(47), PlanSource.BASELINE_INTERVAL)


@pytest.mark.parametrize(
    "status",
    [RunStatus.FAILURE, RunStatus.TIMEOUT, RunStatus.ERROR, RunStatus.LOST],
    ids=lambda s: f"a {s.value} run counts as a failure",
)
def test_an_unsuccessful_run_counts_a_failure_and_backs_off(status: RunStatus) -> None:
    endpoint = leased(ran(make_endpoint(), at(-3), failure_count=1, success_streak=4))
    run = make_run(endpoint, at(17), status, scheduled_for=at(17))
    after = lifecycle.after_run(endpoint, JOB, run, at(18))
    assert (after.failure_count, after.success_streak) == (2, 0)
    assert after.last_status is status
    assert after.next_run_at == at(17) + minutes(40)


def test_the_last_slot_is_the_scheduled_time_and_the_last_run_is_the_start() -> None:
    endpoint = ran(make_endpoint(), at(-3))
    run = make_run(endpoint, at(8), scheduled_for=at(7))
    after = lifecycle.after_run(endpoint, JOB, run, at(9))
    assert (after.last_scheduled_for, after.last_run_at) == (at(7), at(8))
    assert after.next_run_at == at(17)


def test_a_run_at_or_after_the_one_shot_time_consumes_it() -> None:
    endpoint = ran(make_endpoint(one_shots=(one_shot(at(5)),)), at(-3))
    after = lifecycle.after_run(endpoint, JOB, make_run(endpoint, at(5)), at(6))
    assert after.one_shots == ()


def test_a_run_before_the_one_shot_time_leaves_it_pending() -> None:
    endpoint = ran(make_endpoint(one_shots=(one_shot(at(30)),)), at(-3))
    after = lifecycle.after_run(endpoint, JOB, make_run(endpoint, at(7)), at(8))
    assert after.one_shots == endpoint.one_shots
    assert (after.next_run_at, after.next_run_source) == (at(17), PlanSource.BASELINE_INTERVAL)


def test_a_run_drops_hints_that_expired_while_it_ran() -> None:
    hint = interval_hint(minutes(1), at(6))
    endpoint = ran(make_endpoint(interval_hint=hint), at(-3))
    after = lifecycle.after_run(endpoint, JOB, make_run(endpoint, at(5)), at(7))
    assert after.interval_hint is None


def test_a_hint_written_during_a_run_is_honoured_when_it_completes() -> None:
    endpoint = ran(make_endpoint(), at(-3))
    during = lifecycle.with_interval_hint(endpoint, JOB, interval_hint(minutes(2), at(60)), at(8))
    after = lifecycle.after_run(during, JOB, make_run(during, at(7)), at(8))
    assert (after.next_run_at, after.next_run_source) == (at(9), PlanSource.HINT_INTERVAL)


# --- writes that change the governor's inputs replan at once --------------------------


def test_a_one_shot_moves_the_next_run_earlier_at_once() -> None:
    endpoint = scheduled(ran(make_endpoint(), at(-3)))
    assert endpoint.next_run_at == at(7)
    after = lifecycle.with_one_shot(endpoint, JOB, one_shot(at(2)), T0)
    assert (after.next_run_at, after.next_run_source) == (at(2), PlanSource.HINT_ONE_SHOT)


def test_a_relaxing_hint_moves_the_next_run_later_at_once() -> None:
    endpoint = scheduled(ran(make_endpoint(), at(-3)))
    after = lifecycle.with_interval_hint(endpoint, JOB, interval_hint(minutes(30), at(60)), T0)
    assert (after.next_run_at, after.next_run_source) == (at(27), PlanSource.HINT_INTERVAL)


def test_a_write_while_a_run_is_leased_replans_but_keeps_the_lease() -> None:
    endpoint = leased(scheduled(ran(make_endpoint(), at(-3))))
    after = lifecycle.with_interval_hint(endpoint, JOB, interval_hint(minutes(1), at(60)), T0)
    assert after.lease == endpoint.lease
    assert after.next_run_at == T0


def test_pausing_and_resuming_replan_at_once() -> None:
    endpoint = scheduled(ran(make_endpoint(), at(-3)))
    held = lifecycle.paused(endpoint, JOB, pause(at(90), "maintenance"), T0)
    assert (held.next_run_at, held.next_run_source) == (at(90), PlanSource.PAUSED)
    stopped = lifecycle.paused(endpoint, JOB, pause(None), T0)
    assert (stopped.next_run_at, stopped.next_run_source) == (None, PlanSource.PAUSED)
    back = lifecycle.resumed(stopped, JOB, at(1))
    assert (back.pause, back.next_run_at) == (None, at(7))


def test_resuming_after_a_long_pause_catches_up_once() -> None:
    endpoint = lifecycle.paused(ran(make_endpoint(), at(-3)), JOB, pause(None), T0)
    back = lifecycle.resumed(endpoint, JOB, at(120))
    assert (back.next_run_at, back.next_run_source) == (at(120), PlanSource.BASELINE_INTERVAL)


def test_clearing_hints_returns_to_the_baseline_and_keeps_a_pause() -> None:
    endpoint = ran(
        make_endpoint(
            interval_hint=interval_hint(minutes(1), at(60)),
            one_shots=(one_shot(at(2)),),
            pause=pause(at(30)),
        ),
        at(-3),
    )
    cleared = lifecycle.hints_cleared(endpoint, JOB, T0)
    assert (cleared.interval_hint, cleared.one_shots) == (None, ())
    assert cleared.pause == endpoint.pause
    assert cleared.next_run_at == at(30)
    unpaused = lifecycle.hints_cleared(replace(endpoint, pause=None), JOB, T0)
    assert (unpaused.next_run_at, unpaused.next_run_source) == (
        at(7),
        PlanSource.BASELINE_INTERVAL,
    )


def test_resetting_failures_ends_the_backoff_at_once() -> None:
    endpoint = scheduled(ran(make_endpoint(), at(-3), failure_count=5))
    assert endpoint.next_run_at == at(317)
    after = lifecycle.failures_reset(endpoint, JOB, T0)
    assert (after.failure_count, after.next_run_at) == (0, at(7))


def test_archiving_the_job_unschedules_on_the_next_write() -> None:
    endpoint = scheduled(ran(make_endpoint(), at(-3)))
    archived_job = make_job(archived_at=T0)
    after = lifecycle.replan(endpoint, archived_job, T0)
    assert (after.next_run_at, after.next_run_source) == (None, PlanSource.ARCHIVED)


# --- expired hints are dropped on write ----------------------------------------------


def test_a_write_drops_every_expired_hint_and_ended_pause() -> None:
    endpoint = ran(
        make_endpoint(
            interval_hint=interval_hint(minutes(1), at(-1)),
            one_shots=(one_shot(at(-30), expires_at=at(-20)),),
            pause=pause(at(-5)),
        ),
        at(-3),
    )
    after = lifecycle.with_one_shot(endpoint, JOB, one_shot(at(4)), T0)
    assert (after.interval_hint, after.pause) == (None, None)
    assert after.one_shots == (one_shot(at(4)),)


def test_a_write_keeps_fresh_hints() -> None:
    hint = interval_hint(minutes(5), at(60))
    endpoint = ran(make_endpoint(interval_hint=hint, pause=pause(at(30))), at(-3))
    after = lifecycle.failures_reset(endpoint, JOB, T0)
    assert (after.interval_hint, after.pause) == (hint, endpoint.pause)


def test_nothing_expired_leaves_the_endpoint_as_it_is() -> None:
    endpoint = ran(make_endpoint(interval_hint=interval_hint(minutes(5), at(60))), at(-3))
    assert lifecycle.without_expired_hints(endpoint, T0) is endpoint


def test_a_hint_expiring_exactly_at_the_write_is_dropped() -> None:
    endpoint = ran(make_endpoint(interval_hint=interval_hint(minutes(5), T0)), at(-3))
    assert lifecycle.without_expired_hints(endpoint, T0).interval_hint is None


def test_transitions_never_change_the_endpoint_they_are_given() -> None:
    endpoint = ran(make_endpoint(), at(-3))
    before = replace(endpoint)
    lifecycle.with_interval_hint(endpoint, JOB, interval_hint(minutes(1), at(60)), T0)
    lifecycle.after_run(endpoint, JOB, make_run(endpoint, at(7), RunStatus.FAILURE), at(8))
    assert endpoint == before
    assert endpoint.next_run_at is None
    assert endpoint.created_at == T0 - timedelta(days=1)
