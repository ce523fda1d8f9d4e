"""The rules planner's conditions and steps, evaluated on hand-made observations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from cadenza.domain import errors
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import RunStatus
from cadenza.domain.planning import (
    Condition,
    EndpointPlanner,
    Metric,
    MetricCompare,
    OutcomeIs,
    ResponseChange,
    ResponseMatches,
    Rule,
    SiblingLatest,
    Step,
    Verb,
)
from cadenza.planner.rules import evaluate, fingerprint, holds, response_changed, streak

from .factories import T0, TENANT, endpoint, history, observe, run

HEALTH = endpoint("health")
INVESTIGATE = endpoint("investigate")


def holds_now(condition: Condition, runs: tuple, **kw: object) -> bool:  # type: ignore[type-arg]
    obs = observe(HEALTH, runs, **kw)  # type: ignore[arg-type]
    return holds(condition, obs.runs, obs)


def with_rules(*rules: Rule) -> EndpointPlanner:
    return EndpointPlanner(TENANT, HEALTH.id, rules=rules)


def test_outcome_condition_matches_the_latest_run_status() -> None:
    runs = (run(HEALTH, T0, status=RunStatus.TIMEOUT, http_status=None),)
    assert holds_now(OutcomeIs(frozenset({RunStatus.TIMEOUT, RunStatus.ERROR})), runs)
    assert not holds_now(OutcomeIs(frozenset({RunStatus.SUCCESS})), runs)


def test_no_condition_holds_without_runs() -> None:
    assert not holds_now(OutcomeIs(frozenset(RunStatus)), ())


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [(Op.EQ, 503, True), (Op.GE, 500, True), (Op.LT, 500, False), (Op.NE, 503, False)],
)
def test_http_status_compares_with_every_operator(op: Op, value: float, expected: bool) -> None:
    runs = (run(HEALTH, T0, status=RunStatus.FAILURE, http_status=503),)
    assert holds_now(MetricCompare(Metric.HTTP_STATUS, op, value), runs) is expected


def test_http_status_condition_never_holds_when_no_response_came_back() -> None:
    runs = (run(HEALTH, T0, status=RunStatus.ERROR, http_status=None),)
    assert not holds_now(MetricCompare(Metric.HTTP_STATUS, Op.NE, 200), runs)


def test_duration_condition_reads_the_run_duration_in_seconds() -> None:
    runs = (run(HEALTH, T0, duration=2.5),)
    assert holds_now(MetricCompare(Metric.DURATION_SECONDS, Op.GT, 2), runs)
    assert not holds_now(MetricCompare(Metric.DURATION_SECONDS, Op.GT, 3), runs)


def test_failure_and_success_streaks_count_consecutive_runs_from_the_newest() -> None:
    bad = history(HEALTH, [1, 1, 1], status=RunStatus.FAILURE)
    good = run(HEALTH, T0 - timedelta(minutes=5))
    runs = (*bad, good)
    assert streak(runs, ok=False) == 3
    assert holds_now(MetricCompare(Metric.FAILURE_STREAK, Op.GE, 3), runs)
    assert not holds_now(MetricCompare(Metric.SUCCESS_STREAK, Op.GE, 1), runs)
    assert holds_now(MetricCompare(Metric.SUCCESS_STREAK, Op.EQ, 1), (good,))


def test_a_json_pointer_condition_compares_a_value_inside_the_response() -> None:
    runs = history(HEALTH, [{"checkout": {"p95_ms": 1200, "errors": ["db"]}}])
    slow = ResponseMatches(Comparison(Op.GT, 800, "/checkout/p95_ms"))
    has_db = ResponseMatches(Comparison(Op.CONTAINS, "db", "/checkout/errors"))
    missing = ResponseMatches(Comparison(Op.MISSING, None, "/checkout/queue"))
    assert holds_now(slow, runs)
    assert holds_now(has_db, runs)
    assert holds_now(missing, runs)
    assert not holds_now(ResponseMatches(Comparison(Op.LT, 800, "/checkout/p95_ms")), runs)


def test_a_body_text_condition_matches_the_raw_response() -> None:
    runs = (run(HEALTH, T0, body=b"status: DEGRADED"),)
    assert holds_now(ResponseMatches(Comparison(Op.CONTAINS, "DEGRADED")), runs)


def test_a_response_condition_does_not_hold_without_a_response() -> None:
    runs = (run(HEALTH, T0),)
    assert not holds_now(ResponseMatches(Comparison(Op.EXISTS, None, "")), runs)


def test_unchanged_for_n_runs_needs_n_plus_one_identical_responses() -> None:
    same = history(HEALTH, [{"v": 1}] * 4)
    assert holds_now(ResponseChange(changed=False, runs=3), same)
    assert not holds_now(ResponseChange(changed=False, runs=4), same)
    assert not holds_now(ResponseChange(changed=True, runs=4), same)


def test_changed_holds_when_any_of_the_last_n_responses_differs() -> None:
    runs = history(HEALTH, [{"v": 1}, {"v": 2}, {"v": 2}])
    assert holds_now(ResponseChange(changed=True, runs=2), runs)
    assert not holds_now(ResponseChange(changed=True, runs=1), runs)
    assert response_changed(runs, 5, None) is None


def test_a_pointer_limits_change_detection_to_one_value() -> None:
    runs = history(HEALTH, [{"stock": 5, "at": 1}, {"stock": 5, "at": 2}])
    assert holds_now(ResponseChange(changed=True, runs=1), runs)
    assert holds_now(ResponseChange(changed=False, runs=1, json_pointer="/stock"), runs)


def test_losing_the_response_counts_as_a_change() -> None:
    runs = (run(HEALTH, T0 + timedelta(minutes=1)), run(HEALTH, T0, body={"v": 1}))
    assert fingerprint(runs[0]) is None
    assert holds_now(ResponseChange(changed=True), runs)


def test_a_sibling_condition_reads_the_siblings_latest_run() -> None:
    sibling_runs = {HEALTH.id: history(HEALTH, [{"p95_ms": 300}, {"p95_ms": 1500}])}
    cond = SiblingLatest("health", ResponseMatches(Comparison(Op.GT, 1000, "/p95_ms")))
    obs = observe(INVESTIGATE, (), siblings=(HEALTH,), sibling_runs=sibling_runs)
    assert holds(cond, obs.runs, obs)
    unknown = SiblingLatest("nope", OutcomeIs(frozenset(RunStatus)))
    assert not holds(unknown, obs.runs, obs)


SLOW = ResponseMatches(Comparison(Op.GT, 800, "/p95_ms"))


def test_a_rule_fires_every_step_with_times_measured_from_now() -> None:
    steps = (
        Step(Verb.INTERVAL_HINT, interval=timedelta(seconds=10), ttl=timedelta(minutes=20)),
        Step(Verb.ONE_SHOT, target="investigate", delay=timedelta(seconds=30)),
        Step(Verb.PAUSE, target="alerts", delay=timedelta(minutes=15)),
        Step(Verb.RESUME, target="investigate"),
        Step(Verb.CLEAR_HINTS, target="recovery"),
    )
    runs = history(HEALTH, [{"p95_ms": 900}])
    obs = observe(HEALTH, runs, config=with_rules(Rule("slow", (SLOW,), steps)))
    result = evaluate(obs)
    assert result.fired == ("slow",)
    hint, shot, pause, resume, clear = result.intents
    assert (hint.verb, hint.target, hint.interval, hint.ttl) == (
        Verb.INTERVAL_HINT,
        HEALTH.id,
        timedelta(seconds=10),
        timedelta(minutes=20),
    )
    assert (shot.target, shot.at) == ("investigate", obs.now + timedelta(seconds=30))
    assert (pause.target, pause.at) == ("alerts", obs.now + timedelta(minutes=15))
    assert (resume.verb, resume.target) == (Verb.RESUME, "investigate")
    assert (clear.verb, clear.target) == (Verb.CLEAR_HINTS, "recovery")
    assert all(i.origin == "rule:slow" for i in result.intents)


def test_a_rule_needs_every_condition_to_hold() -> None:
    runs = history(HEALTH, [{"p95_ms": 900}])
    failing = OutcomeIs(frozenset({RunStatus.FAILURE}))
    rule = Rule("both", (SLOW, failing), (Step(Verb.CLEAR_HINTS),))
    assert evaluate(observe(HEALTH, runs, config=with_rules(rule))).intents == ()


def test_for_runs_holds_a_rule_back_until_the_condition_repeats() -> None:
    rule = Rule("slow", (SLOW,), (Step(Verb.CLEAR_HINTS),), for_runs=3)
    config = with_rules(rule)
    blip = history(HEALTH, [{"p95_ms": 100}, {"p95_ms": 900}, {"p95_ms": 900}])
    assert evaluate(observe(HEALTH, blip, config=config)).fired == ()
    sustained = history(HEALTH, [{"p95_ms": 900}] * 3)
    assert evaluate(observe(HEALTH, sustained, config=config)).fired == ("slow",)


def test_a_rule_in_its_cooldown_does_not_fire_again() -> None:
    rule = Rule("slow", (SLOW,), (Step(Verb.CLEAR_HINTS),), cooldown=timedelta(minutes=10))
    runs = history(HEALTH, [{"p95_ms": 900}])
    now = runs[0].finished_at
    recent = {"slow": now - timedelta(minutes=5)}
    long_ago = {"slow": now - timedelta(minutes=10)}
    assert evaluate(observe(HEALTH, runs, config=with_rules(rule), fired=recent)).fired == ()
    assert evaluate(observe(HEALTH, runs, config=with_rules(rule), fired=long_ago)).fired


def test_a_rule_of_sibling_conditions_wakes_an_endpoint_without_runs_of_its_own() -> None:
    cond = SiblingLatest("health", SLOW)
    rule = Rule("wake", (cond,), (Step(Verb.RESUME), Step(Verb.ONE_SHOT)), for_runs=3)
    config = EndpointPlanner(TENANT, INVESTIGATE.id, rules=(rule,))
    sibling_runs = {HEALTH.id: history(HEALTH, [{"p95_ms": 1500}])}
    obs = observe(INVESTIGATE, (), config=config, siblings=(HEALTH,), sibling_runs=sibling_runs)
    result = evaluate(obs)
    assert [(i.verb, i.target) for i in result.intents] == [
        (Verb.RESUME, INVESTIGATE.id),
        (Verb.ONE_SHOT, INVESTIGATE.id),
    ]


def test_rules_fire_in_their_order() -> None:
    first = Rule("a", (SLOW,), (Step(Verb.RESUME),))
    second = Rule("b", (SLOW,), (Step(Verb.CLEAR_HINTS),))
    runs = history(HEALTH, [{"p95_ms": 900}])
    result = evaluate(observe(HEALTH, runs, config=with_rules(second, first)))
    assert result.fired == ("b", "a")


def test_rule_construction_refuses_nonsense() -> None:
    with pytest.raises(errors.ValidationError):
        Rule("empty", (SLOW,), ())
    with pytest.raises(errors.ValidationError):
        Rule("window", (SLOW,), (Step(Verb.RESUME),), for_runs=0)
    with pytest.raises(errors.InvalidHint):
        Step(Verb.INTERVAL_HINT)
    with pytest.raises(errors.ValidationError):
        replace(with_rules(first := Rule("x", (SLOW,), (Step(Verb.RESUME),))), rules=(first, first))
