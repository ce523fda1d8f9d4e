"""The rules planner's core: conditions over run results, and rules that fire steps.

Pure and deterministic: the same observation always yields the same intents.

Semantics worth knowing:

* Conditions are evaluated *at* a run (the newest first). Streaks count consecutive
  runs of the same kind ending at that run, within the runs observed.
* ``ResponseChange`` compares response fingerprints: the body bytes, or with a JSON
  Pointer the canonical JSON of that value. A run without a response has the
  fingerprint ``None``, so "no response" after a body counts as a change. Without
  enough runs to judge, neither "changed" nor "unchanged" holds.
* A rule fires when all its conditions hold on each of its ``for_runs`` newest runs
  (hysteresis on entry: one odd result does not move the cadence) and its cooldown
  has passed. A ``SiblingLatest`` condition always looks at the sibling's newest
  run, so a paused endpoint with no runs of its own can still be woken.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cadenza.domain.assertions import Op, resolve_pointer
from cadenza.domain.model import Run
from cadenza.domain.planning import (
    Condition,
    Metric,
    MetricCompare,
    OutcomeIs,
    ResponseMatches,
    Rule,
    SiblingLatest,
    Step,
    Verb,
)
from cadenza.planner.port import Intent, Observation

_COMPARE = {
    Op.EQ: lambda a, b: a == b,
    Op.NE: lambda a, b: a != b,
    Op.LT: lambda a, b: a < b,
    Op.LE: lambda a, b: a <= b,
    Op.GT: lambda a, b: a > b,
    Op.GE: lambda a, b: a >= b,
}


def fingerprint(run: Run, json_pointer: str | None = None) -> str | None:
    """A digest of what the run returned, or of one JSON value inside it."""
    if run.response is None:
        return None
    body = run.response.body
    if json_pointer is not None:
        try:
            value = resolve_pointer(json.loads(body.decode("utf-8", "replace")), json_pointer)
        except ValueError:
            return "unparsable:" + hashlib.sha256(body).hexdigest()
        body = json.dumps(value, sort_keys=True, default=repr).encode()
    return hashlib.sha256(body).hexdigest()


def streak(runs: Sequence[Run], ok: bool) -> int:
    """How many runs from the newest are successes (``ok``) or failures in a row."""
    count = 0
    for run in runs:
        if run.status.ok is not ok:
            break
        count += 1
    return count


def response_changed(runs: Sequence[Run], window: int, json_pointer: str | None) -> bool | None:
    """Whether the response changed in the last ``window`` transitions; ``None`` when
    there are fewer than ``window + 1`` runs to compare."""
    if len(runs) < window + 1:
        return None
    prints = [fingerprint(run, json_pointer) for run in runs[: window + 1]]
    return any(a != b for a, b in itertools.pairwise(prints))


def metric(runs: Sequence[Run], which: Metric) -> float | None:
    run = runs[0]
    if which is Metric.HTTP_STATUS:
        return None if run.http_status is None else float(run.http_status)
    if which is Metric.DURATION_SECONDS:
        return run.duration.total_seconds()
    return float(streak(runs, ok=which is Metric.SUCCESS_STREAK))


def holds(condition: Condition, runs: Sequence[Run], obs: Observation) -> bool:
    """Whether ``condition`` holds at ``runs[0]`` (``runs`` newest first)."""
    if isinstance(condition, SiblingLatest):
        sibling = obs.sibling_named(condition.sibling)
        theirs = obs.sibling_runs.get(sibling.id, ()) if sibling is not None else ()
        return bool(theirs) and holds(condition.condition, theirs, obs)
    if not runs:
        return False
    if isinstance(condition, OutcomeIs):
        return runs[0].status in condition.statuses
    if isinstance(condition, MetricCompare):
        value = metric(runs, condition.metric)
        return value is not None and bool(_COMPARE[condition.op](value, condition.value))
    if isinstance(condition, ResponseMatches):
        response = runs[0].response
        return response is not None and condition.comparison.holds(response.body)
    changed = response_changed(runs, condition.runs, condition.json_pointer)
    return changed is not None and changed is condition.changed


def rule_holds(rule: Rule, obs: Observation) -> bool:
    """All conditions hold on each of the rule's ``for_runs`` newest runs.

    A rule made only of sibling conditions has nothing of its own to repeat, so its
    window is the sibling's latest run alone.
    """
    own = [c for c in rule.when if not isinstance(c, SiblingLatest)]
    if not all(holds(c, obs.runs, obs) for c in rule.when if isinstance(c, SiblingLatest)):
        return False
    if not own:
        return True
    if len(obs.runs) < rule.for_runs:
        return False
    return all(holds(c, obs.runs[offset:], obs) for offset in range(rule.for_runs) for c in own)


def cooling_down(rule: Rule, obs: Observation) -> bool:
    last = obs.fired.get(rule.name)
    return last is not None and obs.now < last + rule.cooldown


@dataclass(frozen=True, slots=True)
class RulesResult:
    intents: tuple[Intent, ...]
    fired: tuple[str, ...]


def evaluate(obs: Observation) -> RulesResult:
    """The intents of every rule that fires now, in rule order."""
    intents: list[Intent] = []
    fired: list[str] = []
    for rule in obs.config.rules:
        if cooling_down(rule, obs) or not rule_holds(rule, obs):
            continue
        fired.append(rule.name)
        intents.extend(step_intent(step, rule.name, obs) for step in rule.then)
    return RulesResult(tuple(intents), tuple(fired))


def step_intent(step: Step, rule_name: str, obs: Observation) -> Intent:
    """The concrete intent of one step; times are measured from ``obs.now``."""
    at = None
    if step.verb in (Verb.ONE_SHOT, Verb.PAUSE):
        at = obs.now + step.delay if step.delay is not None else obs.now
    return Intent(
        verb=step.verb,
        target=step.target if step.target is not None else obs.endpoint.id,
        interval=step.interval,
        ttl=step.ttl,
        at=at,
        reason=f"Rule {rule_name!r} fired.",
        origin=f"rule:{rule_name}",
    )
