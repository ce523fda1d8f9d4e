"""Clamps bound every proposal; hysteresis holds back what is already in force."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from cadenza.domain import limits
from cadenza.domain.model import IntervalHint, OneShot, Pause
from cadenza.domain.planning import (
    MAX_PLANNER_ONE_SHOT_AHEAD,
    MAX_PLANNER_TTL,
    MIN_PLANNER_TTL,
    ONE_SHOT_GRACE,
    Verb,
)
from cadenza.planner.clamps import clamp, interval_bounds
from cadenza.planner.hysteresis import hold_back
from cadenza.planner.port import Intent

from .factories import T0, guarded

seconds = st.floats(min_value=-1e7, max_value=1e9, allow_nan=False)
maybe_seconds = st.none() | st.floats(min_value=1, max_value=1e6)


@st.composite
def endpoints(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    low = draw(maybe_seconds)
    high = draw(maybe_seconds)
    if low is not None and high is not None and low > high:
        low, high = high, low
    last = draw(st.none() | st.floats(min_value=-1e5, max_value=0))
    last_run_at = None if last is None else T0 + timedelta(seconds=last)
    return guarded("health", low, high, last_run_at=last_run_at)


@st.composite
def intents(draw: st.DrawFn) -> Intent:
    verb = draw(st.sampled_from(list(Verb)))
    interval = draw(st.none() | seconds.map(lambda s: timedelta(seconds=abs(s))))
    ttl = draw(st.none() | seconds.map(lambda s: timedelta(seconds=s)))
    at = draw(st.none() | seconds.map(lambda s: T0 + timedelta(seconds=s)))
    return Intent(verb, "end_health", interval, ttl, at, draw(st.text(max_size=2000)))


@given(endpoints(), intents())
def test_every_clamped_proposal_is_within_its_bounds(ep, intent: Intent) -> None:  # type: ignore[no-untyped-def]
    now = T0
    result = clamp(intent, ep, now)
    out = result.intent
    if result.refusal is not None:
        return
    assert len(out.reason) <= limits.MAX_REASON_LENGTH
    if out.verb is Verb.INTERVAL_HINT:
        low, high = interval_bounds(ep)
        assert out.interval is not None
        assert low <= out.interval <= high
        assert out.ttl is not None
        assert MIN_PLANNER_TTL <= out.ttl <= MAX_PLANNER_TTL
    if out.verb is Verb.ONE_SHOT:
        assert out.at is not None
        assert now <= out.at <= now + MAX_PLANNER_ONE_SHOT_AHEAD
        if ep.last_run_at is not None and ep.guardrails.min_interval is not None:
            assert out.at >= ep.last_run_at + ep.guardrails.min_interval
        assert out.ttl is not None
        assert now + out.ttl == out.at + ONE_SHOT_GRACE
    if out.verb is Verb.PAUSE:
        assert out.at is not None
        assert now < out.at <= now + limits.MAX_PLANNER_PAUSE


def test_a_clamped_interval_says_what_was_changed() -> None:
    ep = guarded("health", 30, 300)
    result = clamp(Intent(Verb.INTERVAL_HINT, ep.id, timedelta(seconds=5)), ep, T0)
    assert result.intent.interval == timedelta(seconds=30)
    assert "guardrails" in result.notes[0]


def test_a_planner_pause_without_an_end_lasts_at_most_a_day() -> None:
    ep = guarded("health")
    result = clamp(Intent(Verb.PAUSE, ep.id), ep, T0)
    assert result.intent.at == T0 + limits.MAX_PLANNER_PAUSE


def hint(seconds: float, ttl: timedelta = timedelta(hours=1)) -> IntervalHint:
    return IntervalHint(timedelta(seconds=seconds), T0 + ttl)


def test_an_interval_close_to_the_one_in_force_is_held_back() -> None:
    ep = guarded("health", interval_hint=hint(100))
    close = Intent(Verb.INTERVAL_HINT, ep.id, timedelta(seconds=110), timedelta(hours=1))
    far = Intent(Verb.INTERVAL_HINT, ep.id, timedelta(seconds=200), timedelta(hours=1))
    assert hold_back(close, ep, T0) is not None
    assert hold_back(far, ep, T0) is None


def test_a_hint_about_to_expire_is_renewed() -> None:
    ep = guarded("health", interval_hint=hint(100, ttl=timedelta(minutes=10)))
    renew = Intent(Verb.INTERVAL_HINT, ep.id, timedelta(seconds=100), timedelta(hours=1))
    assert hold_back(renew, ep, T0) is None


def test_a_one_shot_queued_at_about_that_time_holds_back_another() -> None:
    ep = guarded(
        "health", one_shots=(OneShot("osh-1", T0 + timedelta(seconds=30), T0 + timedelta(hours=1)),)
    )
    for seconds_ahead in (10, 60, 300):
        again = Intent(Verb.ONE_SHOT, ep.id, at=T0 + timedelta(seconds=seconds_ahead))
        assert hold_back(again, ep, T0) is not None
    later = Intent(Verb.ONE_SHOT, ep.id, at=T0 + timedelta(hours=2))
    assert hold_back(later, ep, T0) is None


def test_reminders_a_week_apart_all_queue() -> None:
    days = [timedelta(days=n) for n in (7, 14, 21)]
    queue = tuple(OneShot(f"osh-{d.days}", T0 + d, T0 + d + ONE_SHOT_GRACE) for d in days)
    for index, day in enumerate(days):
        ep = guarded("health", one_shots=queue[:index])
        wanted = clamp(Intent(Verb.ONE_SHOT, ep.id, at=T0 + day), ep, T0)
        assert wanted.refusal is None
        assert wanted.intent.at == T0 + day
        assert hold_back(wanted.intent, ep, T0) is None


def test_a_pause_never_shortens_a_longer_or_indefinite_one() -> None:
    forever = guarded("health", pause=Pause(None))
    short = Intent(Verb.PAUSE, forever.id, at=T0 + timedelta(minutes=5))
    assert hold_back(short, forever, T0) is not None
    until = guarded("health", pause=Pause(T0 + timedelta(minutes=1)))
    assert hold_back(short, until, T0) is None


def test_resume_and_clear_are_held_back_when_there_is_nothing_to_do() -> None:
    ep = guarded("health")
    assert hold_back(Intent(Verb.RESUME, ep.id), ep, T0) is not None
    assert hold_back(Intent(Verb.CLEAR_HINTS, ep.id), ep, T0) is not None
    paused = guarded("health", pause=Pause(None), interval_hint=hint(5))
    assert hold_back(Intent(Verb.RESUME, ep.id), paused, T0) is None
    assert hold_back(Intent(Verb.CLEAR_HINTS, ep.id), paused, T0) is None


def test_a_one_shot_beyond_a_long_cooldown_is_refused() -> None:
    ep = guarded("health", 31 * 86400, None, last_run_at=T0)
    result = clamp(Intent(Verb.ONE_SHOT, ep.id, at=T0), ep, T0)
    assert result.refusal is not None
