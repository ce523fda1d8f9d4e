"""Overlap policy in the domain: an ``allow`` run moves its endpoint on as it starts
(``lifecycle.launched``) and folds its outcome when it ends, in any order
(``lifecycle.after_overlapping_run``); ``max_in_flight`` is checked on the entity."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from domain_builders import T0, at, make_endpoint, make_job, make_run, minutes, one_shot
from hypothesis import given
from hypothesis import strategies as st

from cadenza.domain import errors, lifecycle, limits
from cadenza.domain.model import Endpoint, Guardrails, Overlap, PlanSource, RunStatus

JOB = make_job()
ALLOW = {"overlap": Overlap.ALLOW, "max_in_flight": 3}
BASE = PlanSource.BASELINE_INTERVAL


def launch(endpoint: Endpoint, slot: datetime, started: datetime | None = None) -> Endpoint:
    start = slot if started is None else started
    return lifecycle.launched(endpoint, JOB, slot, BASE, start, start)


LAUNCH_CASES = [
    pytest.param(
        {"last_scheduled_for": at(-10), "last_run_at": at(-10)},
        T0,
        (T0, T0, at(10), BASE),
        id="on-time slot: the next slot is planned at once",
    ),
    pytest.param(
        {"last_scheduled_for": at(-10), "last_run_at": at(-10), "failure_count": 2},
        T0,
        (T0, T0, at(40), BASE),
        id="backoff from the failures known when it starts",
    ),
    pytest.param(
        {"last_scheduled_for": at(-10), "guardrails": Guardrails(minutes(15), None)},
        T0,
        (T0, T0, at(15), PlanSource.CLAMPED_MIN),
        id="the cooldown counts from this start, though the run is in flight",
    ),
    pytest.param(
        {"last_scheduled_for": at(10), "last_run_at": at(10), "next_run_at": at(20)},
        T0,
        (at(10), at(10), at(20), BASE),
        id="a lost slot run again moves nothing back",
    ),
    pytest.param(
        {"last_scheduled_for": at(-10), "one_shots": (one_shot(at(-1)),)},
        T0,
        (T0, T0, at(10), BASE),
        id="a one-shot due by its start is served",
    ),
]


@pytest.mark.parametrize(("state", "slot", "expected"), LAUNCH_CASES)
def test_launched(
    state: dict[str, object],
    slot: datetime,
    expected: tuple[datetime, datetime, datetime, PlanSource],
) -> None:
    moved = launch(make_endpoint(**ALLOW, **state), slot)
    assert (
        moved.last_scheduled_for,
        moved.last_run_at,
        moved.next_run_at,
        moved.next_run_source,
    ) == expected
    assert moved.one_shots == ()
    assert moved.attempt == 1


FOLD_CASES = [
    pytest.param(None, T0, RunStatus.FAILURE, (RunStatus.FAILURE, 1, T0), id="first outcome"),
    pytest.param(at(10), T0, RunStatus.FAILURE, (None, 0, at(10)), id="older than the newest"),
    pytest.param(T0, T0, RunStatus.SUCCESS, (RunStatus.SUCCESS, 0, T0), id="same slot again"),
    pytest.param(at(-10), T0, RunStatus.UNKNOWN, (RunStatus.UNKNOWN, 0, T0), id="unknown"),
]


@pytest.mark.parametrize(("newest", "slot", "status", "expected"), FOLD_CASES)
def test_after_overlapping_run(
    newest: datetime | None,
    slot: datetime,
    status: RunStatus,
    expected: tuple[RunStatus | None, int, datetime],
) -> None:
    endpoint = launch(make_endpoint(**ALLOW, last_scheduled_for=at(-10)), at(10))
    run = make_run(endpoint, slot, status, scheduled_for=slot)
    folded, kept = lifecycle.after_overlapping_run(endpoint, JOB, run, newest, at(11))
    assert (folded.last_status, folded.failure_count, kept) == expected
    assert (folded.last_scheduled_for, folded.last_run_at) == (at(10), at(10))


STATUSES = st.sampled_from([RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.TIMEOUT])


@given(st.data(), st.integers(min_value=2, max_value=6))
def test_completions_in_any_order_keep_the_newest_outcome_and_the_lattice(
    data: st.DataObject, count: int
) -> None:
    endpoint = make_endpoint(**ALLOW, last_scheduled_for=at(-10), last_run_at=at(-10))
    slots = [at(10 * i) for i in range(count)]
    for slot in slots:  # each starts on time, while the earlier ones are in flight
        endpoint = launch(endpoint, slot)
    launched = endpoint
    statuses = data.draw(st.lists(STATUSES, min_size=count, max_size=count))
    order = data.draw(st.permutations(range(count)))
    newest: datetime | None = None
    now = slots[-1]
    for index in order:
        now += timedelta(seconds=1)
        run = make_run(endpoint, slots[index], statuses[index], scheduled_for=slots[index])
        endpoint, newest = lifecycle.after_overlapping_run(endpoint, JOB, run, newest, now)
    assert endpoint.last_status is statuses[-1]
    assert (endpoint.last_scheduled_for, endpoint.last_run_at) == (slots[-1], slots[-1])
    assert endpoint.next_run_at is not None
    assert endpoint.next_run_at > slots[-1]
    if statuses[-1] is RunStatus.SUCCESS:
        assert endpoint.failure_count == 0
        assert endpoint.next_run_at == launched.next_run_at
    else:
        assert endpoint.failure_count >= 1


@pytest.mark.parametrize(
    ("overlap", "bound"),
    [(Overlap.SKIP, 2), (Overlap.ALLOW, 1), (Overlap.ALLOW, limits.MAX_IN_FLIGHT + 1)],
)
def test_max_in_flight_is_checked(overlap: Overlap, bound: int) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        make_endpoint(overlap=overlap, max_in_flight=bound)
    assert caught.value.field == "max_in_flight"


@pytest.mark.parametrize("bound", [2, limits.MAX_IN_FLIGHT])
def test_allow_takes_a_bound_within_its_range(bound: int) -> None:
    assert make_endpoint(overlap=Overlap.ALLOW, max_in_flight=bound).max_in_flight == bound
