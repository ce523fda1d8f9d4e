"""The built-in policies: adaptive polling, Retry-After and tightening on failures."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cadenza.domain.model import Actor, ActorKind, IntervalHint, RunStatus
from cadenza.domain.planning import (
    AdaptivePolling,
    EndpointPlanner,
    Policies,
    TightenOnFailures,
    Verb,
)
from cadenza.domain.retry_after import DEFAULT_RETRY_AFTER
from cadenza.planner.policies import policy_intents, retry_after

from .factories import T0, TENANT, guarded, history, observe, run

PLANNER = Actor(ActorKind.PLANNER, "planner", "rules")
PERSON = Actor(ActorKind.USER, "usr_1", "ana")


def config(**policies: object) -> EndpointPlanner:
    return EndpointPlanner(TENANT, "end_health", policies=Policies(**policies))  # type: ignore[arg-type]


def hinted(seconds: float, actor: Actor, **kw: object):  # type: ignore[no-untyped-def]
    hint = IntervalHint(timedelta(seconds=seconds), T0 + timedelta(days=1), "", actor)
    return guarded("health", 10, 600, interval_hint=hint, **kw)  # type: ignore[arg-type]


POLLING = config(adaptive_polling=AdaptivePolling(unchanged_runs=3, factor=2))


def test_polling_relaxes_by_the_factor_while_responses_are_unchanged() -> None:
    ep = guarded("health", 10, 600)
    [intent] = policy_intents(observe(ep, history(ep, [{"v": 1}] * 4), config=POLLING))
    assert intent.verb is Verb.INTERVAL_HINT
    assert intent.interval == timedelta(seconds=120)
    assert intent.origin == "policy:adaptive_polling"


def test_polling_never_relaxes_beyond_max_interval() -> None:
    ep = guarded("health", 10, 600)
    runs = history(ep, [{"v": 1}] * 4, every=500)
    [intent] = policy_intents(observe(ep, runs, config=POLLING))
    assert intent.interval == timedelta(seconds=600)


def test_polling_stays_idle_without_a_max_interval() -> None:
    ep = guarded("health", 10, None)
    assert policy_intents(observe(ep, history(ep, [{"v": 1}] * 4), config=POLLING)) == []


def test_polling_clears_its_own_hint_when_the_response_changes() -> None:
    ep = hinted(240, PLANNER)
    runs = history(ep, [{"v": 1}, {"v": 1}, {"v": 1}, {"v": 2}])
    [intent] = policy_intents(observe(ep, runs, config=POLLING))
    assert intent.verb is Verb.CLEAR_HINTS


def test_polling_leaves_a_persons_hint_alone() -> None:
    ep = hinted(30, PERSON)
    assert policy_intents(observe(ep, history(ep, [{"v": 1}] * 4), config=POLLING)) == []
    changed = history(ep, [{"v": 1}, {"v": 2}])
    assert policy_intents(observe(ep, changed, config=POLLING)) == []


def test_polling_waits_for_enough_unchanged_runs() -> None:
    ep = guarded("health", 10, 600)
    assert policy_intents(observe(ep, history(ep, [{"v": 1}] * 3), config=POLLING)) == []


def test_a_429_with_retry_after_seconds_pauses_until_the_server_says() -> None:
    ep = guarded("health")
    limited = run(
        ep, T0, status=RunStatus.FAILURE, http_status=429, headers=(("Retry-After", "120"),)
    )
    [intent] = policy_intents(observe(ep, (limited,), config=config(honour_retry_after=True)))
    assert intent.verb is Verb.PAUSE
    assert intent.at == limited.finished_at + timedelta(seconds=120)


def test_retry_after_accepts_an_http_date_and_defaults_without_one() -> None:
    ep = guarded("health")
    dated = run(
        ep,
        T0,
        status=RunStatus.FAILURE,
        http_status=503,
        headers=(("retry-after", "Sun, 01 Mar 2026 12:05:00 GMT"),),
        duration=0,
    )
    assert retry_after(dated) == timedelta(minutes=5)
    bare = run(ep, T0, status=RunStatus.FAILURE, http_status=429)
    assert retry_after(bare) == DEFAULT_RETRY_AFTER
    assert retry_after(run(ep, T0, status=RunStatus.FAILURE, http_status=503)) is None
    assert retry_after(run(ep, T0)) is None


def test_retry_after_is_off_unless_the_endpoint_opts_in() -> None:
    ep = guarded("health")
    limited = run(ep, T0, status=RunStatus.FAILURE, http_status=429)
    assert policy_intents(observe(ep, (limited,))) == []


TIGHTEN = config(tighten_on_failures=TightenOnFailures(streak=3, recover_after=2))


def test_a_failure_streak_tightens_to_the_minimum_interval() -> None:
    ep = guarded("health", 10, 600)
    runs = history(ep, [1, 1, 1], status=RunStatus.FAILURE)
    [intent] = policy_intents(observe(ep, runs, config=TIGHTEN))
    assert (intent.verb, intent.interval) == (Verb.INTERVAL_HINT, timedelta(seconds=10))
    assert intent.ttl == timedelta(minutes=30)


def test_two_failures_are_not_yet_a_streak() -> None:
    ep = guarded("health", 10, 600)
    runs = history(ep, [1, 1], status=RunStatus.FAILURE)
    assert policy_intents(observe(ep, runs, config=TIGHTEN)) == []


def test_tightening_is_cleared_only_after_enough_successes() -> None:
    ep = hinted(10, PLANNER)
    failures = history(ep, [1, 1, 1], status=RunStatus.FAILURE)
    one_ok = (run(ep, T0 + timedelta(minutes=10)), *failures)
    assert policy_intents(observe(ep, one_ok, config=TIGHTEN)) == []
    two_ok = (run(ep, T0 + timedelta(minutes=11)), *one_ok)
    [intent] = policy_intents(observe(ep, two_ok, config=TIGHTEN))
    assert intent.verb is Verb.CLEAR_HINTS


def test_tightening_needs_an_interval_to_tighten_to() -> None:
    ep = guarded("health")
    runs = history(ep, [1, 1, 1], status=RunStatus.FAILURE)
    assert policy_intents(observe(ep, runs, config=TIGHTEN)) == []
    explicit = config(tighten_on_failures=TightenOnFailures(interval=timedelta(seconds=5)))
    [intent] = policy_intents(observe(ep, runs, config=explicit))
    assert intent.interval == timedelta(seconds=5)


def test_tightening_does_not_override_a_persons_hint() -> None:
    ep = replace(hinted(300, PERSON))
    runs = history(ep, [1, 1, 1], status=RunStatus.FAILURE)
    assert policy_intents(observe(ep, runs, config=TIGHTEN)) == []
