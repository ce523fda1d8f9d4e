"""Properties of the governor over random endpoints, jobs and moments.

Each example builds an endpoint with a random baseline (interval or cron in a zone
with DST), guardrails, hints, pauses, failure count, catch-up mode, jitter and run
history, and a job that may be paused; ``now`` is random too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from domain_builders import T0, make_endpoint, make_job
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.domain import lifecycle
from cadenza.domain.governor import jitter_offset, plan_next_run, preview
from cadenza.domain.limits import MAX_INTERVAL
from cadenza.domain.model import (
    CatchUp,
    Endpoint,
    Guardrails,
    IntervalHint,
    Job,
    OneShot,
    Pause,
    PlanSource,
)
from cadenza.domain.schedule import Baseline, CronSchedule, IntervalSchedule

BOUNDED = settings(max_examples=200, deadline=None, database=None)

CRONS = ["* * * * *", "*/15 * * * *", "0 * * * *", "30 2 * * *", "30 1 * * *", "0 9 * * 1-5"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]


def seconds(low: float, high: float) -> st.SearchStrategy[timedelta]:
    return st.floats(low, high, allow_nan=False).map(lambda s: timedelta(seconds=s))


SPANS = st.one_of(
    seconds(1, 3600),
    seconds(3600, 90 * 86400),
    st.just(MAX_INTERVAL),
)
"""Durations from 1 s to the 400-day bound, weighted towards realistic cadences."""

BASELINES: st.SearchStrategy[Baseline] = st.one_of(
    st.builds(CronSchedule, st.sampled_from(CRONS), st.sampled_from(ZONES)),
    st.builds(IntervalSchedule, SPANS),
)


@st.composite
def guardrails(draw: st.DrawFn) -> Guardrails:
    low = draw(st.none() | SPANS)
    high = draw(st.none() | SPANS)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return Guardrails(low, high)


@dataclass(frozen=True)
class Scene:
    now: datetime
    endpoint: Endpoint
    job: Job


@st.composite
def pauses(draw: st.DrawFn, now: datetime) -> Pause | None:
    kind = draw(st.sampled_from(["none", "none", "indefinite", "bounded"]))
    if kind == "none":
        return None
    if kind == "indefinite":
        return Pause(None)
    return Pause(now + draw(seconds(-86400, 86400)))


@st.composite
def scenes(draw: st.DrawFn) -> Scene:
    now = T0 + draw(seconds(-400 * 86400, 400 * 86400))
    ran = draw(st.booleans())
    last_run = now - draw(seconds(-60, 30 * 86400)) if ran else None
    # A run starts at its slot or later, and at most 2 ms early.
    slot = last_run - draw(seconds(-0.002, 86400)) if last_run is not None else None
    hint = None
    if draw(st.booleans()):
        hint = IntervalHint(draw(SPANS), now + draw(seconds(-3600, 7 * 86400)))
    shots = []
    for index in range(draw(st.integers(0, 3))):
        run_at = now + draw(seconds(-3600, 86400))
        shots.append(OneShot(f"osh-{index}", run_at, run_at + draw(seconds(-60, 86400))))
    endpoint = make_endpoint(
        draw(BASELINES),
        created_at=now - draw(seconds(0, 800 * 86400)),
        guardrails=draw(guardrails()),
        interval_hint=hint,
        one_shots=tuple(sorted(shots, key=lambda shot: shot.run_at)),
        pause=draw(pauses(now)),
        failure_count=draw(st.integers(0, 40)),
        catch_up=draw(st.sampled_from(CatchUp)),
        jitter=draw(st.sampled_from([timedelta(0), timedelta(seconds=30), timedelta(hours=1)])),
        last_run_at=last_run,
        last_scheduled_for=slot,
    )
    return Scene(now, endpoint, make_job(pause=draw(pauses(now))))


def paused(scene: Scene) -> bool:
    return scene.endpoint.paused(scene.now) or scene.job.paused(scene.now)


@BOUNDED
@given(scenes())
def test_a_plan_is_never_before_now(scene: Scene) -> None:
    result = plan_next_run(scene.now, scene.endpoint, scene.job)
    assert result.next_run_at is None or result.next_run_at >= scene.now


@BOUNDED
@given(scenes())
def test_planning_is_deterministic(scene: Scene) -> None:
    first = plan_next_run(scene.now, scene.endpoint, scene.job)
    assert plan_next_run(scene.now, scene.endpoint, scene.job) == first


@BOUNDED
@given(scenes())
def test_a_pause_always_wins(scene: Scene) -> None:
    result = plan_next_run(scene.now, scene.endpoint, scene.job)
    pauses = [
        p for p in (scene.endpoint.pause, scene.job.pause) if p is not None and p.active(scene.now)
    ]
    if not pauses:
        assert result.source is not PlanSource.PAUSED
        return
    assert result.source is PlanSource.PAUSED
    ends = [p.until for p in pauses]
    expected = None if None in ends else max(e for e in ends if e is not None)
    assert result.next_run_at == expected


@BOUNDED
@given(scenes())
def test_clamps_hold_from_the_last_run_unless_paused(scene: Scene) -> None:
    """With ``L = last_run_at``, an unpaused plan ``P`` satisfies

    ``L + min_interval <= P <= max(L + max_interval, now)``.

    So ``min <= P - L <= max`` always holds, except when ``L + max_interval`` has
    already passed: then "not in the past" makes ``P`` exactly ``now``.
    """
    endpoint, now = scene.endpoint, scene.now
    last = endpoint.last_run_at
    if last is None or paused(scene):
        return
    planned = plan_next_run(now, endpoint, scene.job).next_run_at
    assert planned is not None
    rails = endpoint.guardrails
    if rails.min_interval is not None:
        assert planned >= last + rails.min_interval
    if rails.max_interval is not None:
        assert planned <= max(last + rails.max_interval, now)
        if last + rails.max_interval < now:
            assert planned == now


@BOUNDED
@given(scenes())
def test_a_hint_only_plans_runs_while_it_is_fresh(scene: Scene) -> None:
    result = plan_next_run(scene.now, scene.endpoint, scene.job)
    hint, shots = scene.endpoint.interval_hint, scene.endpoint.one_shots
    if result.source is PlanSource.HINT_INTERVAL:
        assert hint is not None
        assert result.next_run_at is not None
        assert result.next_run_at < hint.expires_at
    if result.source is PlanSource.HINT_ONE_SHOT:
        assert result.next_run_at is not None
        assert any(shot.run_at <= result.next_run_at < shot.expires_at for shot in shots)


@BOUNDED
@given(scenes())
def test_the_explanation_ends_with_the_decision(scene: Scene) -> None:
    result = plan_next_run(scene.now, scene.endpoint, scene.job)
    last = result.explanation[-1]
    assert last.rule in {"chosen", "paused", "archived"}
    assert last.candidate == result.next_run_at
    assert all(step.note for step in result.explanation)


@settings(max_examples=100, deadline=None, database=None)
@given(scenes())
def test_a_preview_moves_strictly_forward(scene: Scene) -> None:
    starts = [p.next_run_at for p in preview(scene.now, scene.endpoint, scene.job, 5)]
    known = [s for s in starts if s is not None]
    assert all(a < b for a, b in pairwise(known))
    assert None not in starts[:-1]


@BOUNDED
@given(scenes())
def test_a_write_replans_to_exactly_what_the_governor_says(scene: Scene) -> None:
    replanned = lifecycle.replan(scene.endpoint, scene.job, scene.now)
    assert replanned.next_run_at == plan_next_run(scene.now, replanned, scene.job).next_run_at


@BOUNDED
@given(
    st.text(min_size=1, max_size=30),
    st.integers(0, 10**6).map(lambda m: T0 + timedelta(minutes=m)),
    st.integers(1, 3600 * 10**6).map(lambda us: timedelta(microseconds=us)),
)
def test_jitter_is_stable_and_within_zero_and_the_jitter(
    endpoint_id: str, slot: datetime, jitter: timedelta
) -> None:
    offset = jitter_offset(endpoint_id, slot, jitter)
    assert timedelta(0) <= offset < jitter
    assert jitter_offset(endpoint_id, slot, jitter) == offset
