"""A target's Retry-After holds the endpoint's next run back, bounded by the maximum
interval, and the plan says so (issue #16.4)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from domain_builders import T0, at, make_endpoint, make_job, make_run, minutes, one_shot, ran, rules
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.domain import lifecycle
from cadenza.domain.governor import plan_next_run
from cadenza.domain.model import Endpoint, Guardrails, ResponseCapture, RunStatus
from cadenza.domain.retry_after import DEFAULT_RETRY_AFTER, requested_wait

JOB = make_job()


def asked(endpoint: Endpoint, until: datetime) -> Endpoint:
    return replace(endpoint, retry_after_until=until)


CASES = [
    pytest.param(asked(ran(make_endpoint(), at(-1)), at(30)), at(30), id="the next slot waits"),
    pytest.param(
        asked(ran(make_endpoint(guardrails=Guardrails(max_interval=minutes(20))), at(-1)), at(60)),
        at(19),
        id="never later than the maximum interval after the last run",
    ),
    pytest.param(
        asked(ran(make_endpoint(one_shots=(one_shot(at(2)),)), at(-1)), at(5)),
        at(5),
        id="a one-shot waits too",
    ),
    pytest.param(
        asked(ran(make_endpoint(), at(-1)), at(3)), at(9), id="a wait already over changes nothing"
    ),
]


@pytest.mark.parametrize(("endpoint", "expected"), CASES)
def test_retry_after_holds_the_next_run_back(endpoint: Endpoint, expected: datetime) -> None:
    plan = plan_next_run(T0, endpoint, JOB)
    assert plan.next_run_at == expected
    assert ("retry-after" in rules(plan)) is (expected != at(9))


def _answered(status: int, headers: tuple[tuple[str, str], ...]) -> ResponseCapture:
    return ResponseCapture(b"", "", 0, False, headers)


def test_a_429_with_retry_after_is_kept_on_the_endpoint_and_a_success_clears_it() -> None:
    endpoint = ran(make_endpoint(), at(-10))
    run = replace(
        make_run(endpoint, T0, status=RunStatus.FAILURE),
        http_status=429,
        response=_answered(429, (("Retry-After", "1200"),)),
    )
    after = lifecycle.after_run(endpoint, JOB, run, run.finished_at)
    assert after.retry_after_until == run.finished_at + timedelta(seconds=1200)
    assert after.next_run_at == after.retry_after_until
    ok = make_run(after, after.retry_after_until)
    cleared = lifecycle.after_run(after, JOB, ok, ok.finished_at)
    assert cleared.retry_after_until is None


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (429, (), DEFAULT_RETRY_AFTER),
        (503, (), None),
        (503, (("retry-after", "30"),), timedelta(seconds=30)),
        (500, (("Retry-After", "30"),), None),
        (429, (("Retry-After", "Mon, 05 Jan 2026 12:10:01 GMT"),), timedelta(minutes=10)),
    ],
)
def test_the_wait_asked_for(
    status: int, headers: tuple[tuple[str, str], ...], wait: timedelta | None
) -> None:
    run = replace(
        make_run(make_endpoint(), T0, status=RunStatus.FAILURE),
        http_status=status,
        response=_answered(status, headers),
    )
    assert requested_wait(run) == wait


@settings(max_examples=200, deadline=None, database=None)
@given(
    wait=st.integers(1, 10 * 86400),
    every=st.integers(1, 86400),
    max_interval=st.none() | st.integers(1, 86400),
    since=st.integers(0, 3600),
)
def test_retry_after_is_respected_and_clamped(
    wait: int, every: int, max_interval: int | None, since: int
) -> None:
    last = T0 - timedelta(seconds=since)
    rails = Guardrails(
        max_interval=None if max_interval is None else timedelta(seconds=max_interval)
    )
    base = make_endpoint(
        replace(make_endpoint().baseline, every=timedelta(seconds=every)), guardrails=rails
    )
    until = last + timedelta(seconds=wait)
    endpoint = asked(ran(base, last), until)
    plan = plan_next_run(T0, endpoint, JOB)
    assert plan.next_run_at is not None
    bound = None if max_interval is None else last + timedelta(seconds=max_interval)
    floor = until if bound is None else min(until, bound)
    assert plan.next_run_at >= floor
    if bound is not None:
        assert plan.next_run_at <= max(bound, T0)
