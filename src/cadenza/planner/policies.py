"""Built-in, opt-in policies of the rules planner. Pure.

* **Adaptive polling** relaxes an endpoint toward its ``max_interval`` while its
  responses stay unchanged, multiplying the observed spacing by ``factor`` each
  time, and clears the planner's hint on the first change (back to the baseline).
  Without a ``max_interval`` there is nothing to relax toward, so it stays idle.
* **Honour Retry-After**: a 429 (or 503 with ``Retry-After``) pauses the endpoint
  until the time the server asked for, bounded like every planner pause; a 429
  without the header waits ``DEFAULT_RETRY_AFTER``.
* **Tighten on failures**: after a failure streak, run at the tight interval for a
  while; once ``recover_after`` successes follow, clear the hint. Entering and
  leaving use different thresholds, so one flaky run does not flap the cadence.

Policies never override a person's hint: they only clear or replace hints that a
planner wrote.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cadenza.domain.model import ActorKind, Endpoint, Run
from cadenza.domain.planning import AdaptivePolling, TightenOnFailures, Verb
from cadenza.domain.retry_after import requested_wait
from cadenza.planner.port import Intent, Observation
from cadenza.planner.rules import response_changed, streak


def policy_intents(obs: Observation) -> list[Intent]:
    """The intents of every policy the endpoint opted into, in a fixed order."""
    policies = obs.config.policies
    intents: list[Intent] = []
    if policies.honour_retry_after:
        intents.extend(retry_after_intents(obs))
    if policies.tighten_on_failures is not None:
        intents.extend(tighten_intents(obs, policies.tighten_on_failures))
    if policies.adaptive_polling is not None:
        intents.extend(polling_intents(obs, policies.adaptive_polling))
    return intents


def _hint_by_planner(endpoint: Endpoint, now: datetime) -> bool | None:
    """``True``/``False``: a fresh hint written by a planner or not; ``None``: none."""
    hint = endpoint.interval_hint
    if hint is None or not hint.fresh(now):
        return None
    return hint.actor.kind is ActorKind.PLANNER


def retry_after(run: Run) -> timedelta | None:
    """How long the server asked us to wait, from the run's 429/503 response."""
    return requested_wait(run)


def retry_after_intents(obs: Observation) -> list[Intent]:
    if not obs.runs:
        return []
    latest = obs.runs[0]
    wait = retry_after(latest)
    if wait is None:
        return []
    return [
        Intent(
            verb=Verb.PAUSE,
            target=obs.endpoint.id,
            at=latest.finished_at + wait,
            reason=f"HTTP {latest.http_status}: the server asked to wait "
            f"{wait.total_seconds():g} s (Retry-After).",
            origin="policy:honour_retry_after",
        )
    ]


def tighten_intents(obs: Observation, policy: TightenOnFailures) -> list[Intent]:
    endpoint = obs.endpoint
    failures = streak(obs.runs, ok=False)
    if failures >= policy.streak:
        interval = policy.interval or endpoint.guardrails.min_interval
        if interval is None or _hint_by_planner(endpoint, obs.now) is False:
            return []
        return [
            Intent(
                verb=Verb.INTERVAL_HINT,
                target=endpoint.id,
                interval=interval,
                ttl=policy.ttl,
                reason=f"{failures} failures in a row: watching closely.",
                origin="policy:tighten_on_failures",
            )
        ]
    recovered = streak(obs.runs, ok=True) >= policy.recover_after
    if recovered and _hint_by_planner(endpoint, obs.now):
        return [_clear(endpoint, "Recovered: back to the baseline.", "tighten_on_failures")]
    return []


def polling_intents(obs: Observation, policy: AdaptivePolling) -> list[Intent]:
    endpoint = obs.endpoint
    ceiling = endpoint.guardrails.max_interval
    by_planner = _hint_by_planner(endpoint, obs.now)
    if ceiling is None or by_planner is False or len(obs.runs) < 2:
        return []
    if not obs.runs[0].status.ok:
        return []
    changed = response_changed(obs.runs, policy.unchanged_runs, policy.json_pointer)
    if changed is None:
        latest_changed = response_changed(obs.runs, 1, policy.json_pointer)
        if latest_changed and by_planner:
            return [_clear(endpoint, "The response changed: back to the baseline.", "polling")]
        return []
    if changed:
        if by_planner and response_changed(obs.runs, 1, policy.json_pointer):
            return [_clear(endpoint, "The response changed: back to the baseline.", "polling")]
        return []
    spacing = obs.runs[0].started_at - obs.runs[1].started_at
    relaxed = min(ceiling, spacing * policy.factor)
    return [
        Intent(
            verb=Verb.INTERVAL_HINT,
            target=endpoint.id,
            interval=relaxed,
            ttl=relaxed * (policy.unchanged_runs + 1),
            reason=f"Response unchanged for {policy.unchanged_runs} runs: polling less often.",
            origin="policy:adaptive_polling",
        )
    ]


def _clear(endpoint: Endpoint, reason: str, policy: str) -> Intent:
    return Intent(
        verb=Verb.CLEAR_HINTS, target=endpoint.id, reason=reason, origin=f"policy:{policy}"
    )
