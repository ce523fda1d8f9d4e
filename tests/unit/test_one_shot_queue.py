"""Several one-shots per endpoint (issue #16, missing capability 3).

A queue in ``run_at`` order; adding one never replaces another; each is served by
exactly one run, the first that starts at or after its time (one run serves every
one-shot due by its start); expired ones are dropped; the cooldown, pauses and the
baseline keep their meaning. Table cases first, then properties over whole runs of
the scheduler's loop (plan, run at the planned time, fold the run in).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from domain_builders import (
    T0,
    at,
    every,
    make_endpoint,
    make_job,
    make_run,
    minutes,
    one_shot,
    pause,
    ran,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.domain import errors, lifecycle
from cadenza.domain.governor import plan_next_run, preview
from cadenza.domain.limits import MAX_ONE_SHOTS
from cadenza.domain.model import Endpoint, Guardrails, Job, OneShot, PlanSource

JOB = make_job()
HOURLY = every(timedelta(hours=1))


def queued(*shots: OneShot, base: Endpoint | None = None) -> Endpoint:
    """``base`` (hourly, last run 3 minutes ago) with ``shots`` added one by one at T0."""
    endpoint = base if base is not None else ran(make_endpoint(HOURLY), at(-3))
    for shot in shots:
        endpoint = lifecycle.with_one_shot(endpoint, JOB, shot, T0)
    return endpoint


def served(endpoint: Endpoint, start: datetime, job: Job = JOB) -> Endpoint:
    """``endpoint`` after a successful run that started at ``start`` as planned."""
    plan = plan_next_run(start, endpoint, job)
    run = make_run(endpoint, start, source=plan.source)
    return lifecycle.after_run(endpoint, job, run, start)


def ids(endpoint: Endpoint) -> list[str]:
    return [shot.id for shot in endpoint.one_shots]


# --- The governor: table --------------------------------------------------------------

QUEUES = [
    pytest.param(
        queued(one_shot(at(40)), one_shot(at(5)), one_shot(at(20))),
        at(5),
        PlanSource.HINT_ONE_SHOT,
        id="the earliest of several queued one-shots runs first, whatever the order added",
    ),
    pytest.param(
        replace(queued(), one_shots=(one_shot(at(-30), expires_at=at(-1)), one_shot(at(20)))),
        at(20),
        PlanSource.HINT_ONE_SHOT,
        id="an expired one-shot at the head does not hide the next",
    ),
    pytest.param(
        queued(one_shot(at(90)), one_shot(at(120))),
        at(57),
        PlanSource.BASELINE_INTERVAL,
        id="a baseline slot before every queued one-shot still comes first",
    ),
    pytest.param(
        queued(one_shot(at(30)), OneShot("osh-now", T0, at(60), run_now=True)),
        T0,
        PlanSource.RUN_NOW,
        id="a queued run-now wins over the one-shots queued before it",
    ),
    pytest.param(
        queued(one_shot(at(5)), one_shot(at(8)), base=ran(make_endpoint(
            HOURLY, guardrails=Guardrails(min_interval=minutes(20))), at(-3))),
        at(17),
        PlanSource.CLAMPED_MIN,
        id="the cooldown holds the queue's head back",
    ),
    pytest.param(
        queued(one_shot(at(5)), one_shot(at(10)), base=ran(make_endpoint(
            HOURLY, pause=pause(at(30))), at(-3))),
        at(30),
        PlanSource.PAUSED,
        id="a pause holds every queued one-shot back until it ends",
    ),
    pytest.param(
        queued(one_shot(at(5)), base=ran(make_endpoint(HOURLY, pause=pause(None)), at(-3))),
        None,
        PlanSource.PAUSED,
        id="an indefinite pause plans nothing, one-shots or not",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("endpoint", "expected", "source"), QUEUES)
def test_the_governor_plans_the_queue(
    endpoint: Endpoint, expected: datetime | None, source: PlanSource
) -> None:
    result = plan_next_run(T0, endpoint, JOB)
    assert (result.next_run_at, result.source) == (expected, source)


def test_the_explanation_lists_the_queue_and_says_one_run_serves_what_is_due() -> None:
    result = plan_next_run(T0, queued(one_shot(at(5)), one_shot(at(5), shot_id="b")), JOB)
    step = next(s for s in result.explanation if s.rule == "one-shots-queued")
    assert "2 one-shots queued" in step.note
    assert "a run serves every one due by its start" in step.note


# --- Adding, consuming, cancelling ----------------------------------------------------


def test_adding_a_one_shot_never_replaces_another() -> None:
    endpoint = queued(one_shot(at(30), shot_id="a"), one_shot(at(10), shot_id="b"))
    endpoint = queued(one_shot(at(30), shot_id="c"), base=endpoint)
    assert ids(endpoint) == ["b", "a", "c"]  # run order; same time: the order of arrival


def test_the_queue_is_bounded_and_refuses_one_more_without_dropping_any() -> None:
    endpoint = queued(*(one_shot(at(n + 1), shot_id=f"s{n}") for n in range(MAX_ONE_SHOTS)))
    with pytest.raises(errors.OneShotQueueFull, match="cancel one"):
        lifecycle.with_one_shot(endpoint, JOB, one_shot(at(90), shot_id="extra"), T0)
    assert len(endpoint.one_shots) == MAX_ONE_SHOTS


def test_expired_one_shots_leave_room_in_the_queue() -> None:
    old = [one_shot(at(-30), expires_at=at(-1), shot_id=f"old{n}") for n in range(MAX_ONE_SHOTS)]
    endpoint = replace(ran(make_endpoint(HOURLY), at(-3)), one_shots=tuple(old))
    endpoint = lifecycle.with_one_shot(endpoint, JOB, one_shot(at(5), shot_id="new"), T0)
    assert ids(endpoint) == ["new"]


def test_a_run_serves_every_one_shot_due_by_its_start_and_leaves_the_rest() -> None:
    endpoint = queued(
        one_shot(at(5), shot_id="a"), one_shot(at(5), shot_id="b"), one_shot(at(30), shot_id="c")
    )
    after = served(endpoint, at(5))
    assert ids(after) == ["c"]
    assert (after.next_run_at, after.next_run_source) == (at(30), PlanSource.HINT_ONE_SHOT)


def test_one_shots_run_in_order_between_baseline_slots() -> None:
    endpoint = queued(
        one_shot(at(5)), one_shot(at(30)), base=ran(make_endpoint(every(minutes(10))), at(-3))
    )
    starts = [(p.next_run_at, p.source) for p in preview(T0, endpoint, JOB, 5)]
    assert starts == [
        (at(5), PlanSource.HINT_ONE_SHOT),
        (at(15), PlanSource.BASELINE_INTERVAL),
        (at(25), PlanSource.BASELINE_INTERVAL),
        (at(30), PlanSource.HINT_ONE_SHOT),
        (at(40), PlanSource.BASELINE_INTERVAL),
    ]


def test_reminders_at_7_14_and_21_days_each_run_once() -> None:
    days = [timedelta(days=n) for n in (7, 14, 21)]
    weekly = ran(make_endpoint(every(timedelta(days=30))), at(-3))
    endpoint = queued(*(one_shot(T0 + d, shot_id=f"day{d.days}") for d in days), base=weekly)
    starts = []
    for _ in days:
        start = endpoint.next_run_at
        assert start is not None
        starts.append(start)
        endpoint = served(endpoint, start)
    assert starts == [T0 + d for d in days]
    assert endpoint.one_shots == ()


def test_cancelling_removes_exactly_that_one_shot_and_replans() -> None:
    endpoint = queued(one_shot(at(5), shot_id="a"), one_shot(at(20), shot_id="b"))
    after = lifecycle.without_one_shot(endpoint, JOB, "a", T0)
    assert ids(after) == ["b"]
    assert after.next_run_at == at(20)


@pytest.mark.parametrize("missing", ["nope", "a-ran"])
def test_cancelling_a_one_shot_not_queued_is_not_found(missing: str) -> None:
    endpoint = served(queued(one_shot(at(5), shot_id="a-ran"), one_shot(at(20))), at(5))
    with pytest.raises(errors.OneShotNotFound):
        lifecycle.without_one_shot(endpoint, JOB, missing, at(5))


def test_clearing_hints_drops_the_whole_queue() -> None:
    endpoint = queued(one_shot(at(5)), one_shot(at(20)), one_shot(at(40)))
    assert lifecycle.hints_cleared(endpoint, JOB, T0).one_shots == ()


# --- Properties over whole runs of the loop -------------------------------------------

STEP_LIMIT = 400


@dataclass(frozen=True)
class Story:
    endpoint: Endpoint
    shots: tuple[OneShot, ...]
    cooldown: timedelta | None
    paused_until: datetime | None


@st.composite
def stories(draw: st.DrawFn) -> Story:
    interval = timedelta(minutes=draw(st.integers(1, 120)))
    cooldown = draw(st.none() | st.integers(1, 30).map(lambda m: timedelta(minutes=m)))
    paused_until = draw(st.none() | st.integers(1, 120).map(at))
    shots = []
    for index in range(draw(st.integers(0, 8))):
        run_at = at(draw(st.integers(-30, 360)))
        ttl = timedelta(minutes=draw(st.integers(1, 180)))
        shots.append(OneShot(f"osh-{index}", run_at, max(run_at, T0) + ttl, f"#{index}"))
    base = ran(
        make_endpoint(
            every(interval),
            guardrails=Guardrails(min_interval=cooldown),
            pause=None if paused_until is None else pause(paused_until),
        ),
        at(-draw(st.integers(0, 60))),
    )
    return Story(queued(*shots, base=base), tuple(shots), cooldown, paused_until)


def play(story: Story) -> tuple[list[datetime], dict[str, list[datetime]]]:
    """Run the loop until the queue is empty: every start, and the starts that
    served each one-shot (taken out of the queue while due and fresh)."""
    endpoint, starts = story.endpoint, []
    serving: dict[str, list[datetime]] = {shot.id: [] for shot in story.shots}
    for _ in range(STEP_LIMIT):
        if not endpoint.one_shots or endpoint.next_run_at is None:
            break
        start = endpoint.next_run_at
        before = endpoint.one_shots
        endpoint = served(endpoint, start)
        starts.append(start)
        left = {shot.id for shot in endpoint.one_shots}
        for shot in before:
            if shot.id not in left and shot.run_at <= start < shot.expires_at:
                serving[shot.id].append(start)
    return starts, serving


PROPERTY = settings(max_examples=300, deadline=None, database=None)


@PROPERTY
@given(stories())
def test_each_one_shot_is_served_once_by_the_first_run_in_its_window(story: Story) -> None:
    starts, serving = play(story)
    for shot in story.shots:
        inside = [s for s in starts if shot.run_at <= s < shot.expires_at]
        assert serving[shot.id] == inside[:1], shot


@PROPERTY
@given(stories())
def test_queued_one_shots_are_served_in_their_order(story: Story) -> None:
    _, serving = play(story)
    done = sorted((shot.run_at, serving[shot.id][0]) for shot in story.shots if serving[shot.id])
    assert [start for _, start in done] == sorted(start for _, start in done)


@PROPERTY
@given(stories())
def test_no_run_starts_while_paused_or_within_the_cooldown(story: Story) -> None:
    starts, _ = play(story)
    if story.paused_until is not None:
        assert all(start >= story.paused_until for start in starts)
    if story.cooldown is not None:
        last = story.endpoint.last_run_at
        assert last is not None
        gaps = zip([last, *starts], starts, strict=False)
        # A bounded pause plans its end as is (SCHEDULING.md §2 rule 7), cooldown or not.
        cooled = [(a, b) for a, b in gaps if b != story.paused_until]
        assert all(later - earlier >= story.cooldown for earlier, later in cooled)


@PROPERTY
@given(stories())
def test_without_pause_or_cooldown_every_one_shot_runs_at_its_time(story: Story) -> None:
    endpoint = replace(story.endpoint, guardrails=Guardrails(), pause=None)
    _, serving = play(replace(story, endpoint=lifecycle.replan(endpoint, JOB, T0)))
    for shot in story.shots:
        assert serving[shot.id] == [max(shot.run_at, T0)], shot


@PROPERTY
@given(stories())
def test_one_shots_never_hold_the_baseline_back(story: Story) -> None:
    endpoint = replace(story.endpoint, guardrails=Guardrails(), pause=None)
    starts, _ = play(replace(story, endpoint=lifecycle.replan(endpoint, JOB, T0)))
    interval = endpoint.baseline.every  # type: ignore[union-attr]
    last = endpoint.last_run_at
    assert last is not None
    gaps = zip([max(last, T0 - interval), *starts], starts, strict=False)
    assert all(later - earlier <= interval for earlier, later in gaps)
