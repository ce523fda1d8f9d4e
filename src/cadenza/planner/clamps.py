"""Bounds on every planner proposal, whatever planner made it.

Pure. An intent leaves ``clamp`` within these bounds (the governor would clamp the
plan anyway; clamping the proposal too means what is recorded and shown is what
can actually happen):

* interval hints: within the target's ``min_interval``..``max_interval`` and the
  global 1 s..400 days; TTL between 1 minute and 24 hours (default 1 hour);
* one-shots: not before now, not before the target's cooldown (``last_run_at +
  min_interval``), not more than 30 days ahead (refused when the cooldown ends
  later than that); valid until 5 minutes after;
* pauses: end between now + 1 s and now + ``MAX_PLANNER_PAUSE`` (24 hours);
* reasons: cut to the longest reason an action accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cadenza.domain import limits
from cadenza.domain.model import Endpoint
from cadenza.domain.planning import (
    MAX_PLANNER_ONE_SHOT_AHEAD,
    MAX_PLANNER_TTL,
    MIN_PLANNER_TTL,
    ONE_SHOT_GRACE,
    Verb,
)
from cadenza.planner.port import Intent


@dataclass(frozen=True, slots=True)
class Clamped:
    """The bounded intent; ``refusal`` says why it cannot be applied at all."""

    intent: Intent
    notes: tuple[str, ...]
    refusal: str | None = None


def _bound(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(high, value))


def interval_bounds(target: Endpoint) -> tuple[timedelta, timedelta]:
    guard = target.guardrails
    low = max(limits.MIN_INTERVAL, guard.min_interval or limits.MIN_INTERVAL)
    high = min(limits.MAX_INTERVAL, guard.max_interval or limits.MAX_INTERVAL)
    return low, high


def clamp(intent: Intent, target: Endpoint, now: datetime) -> Clamped:
    """``intent`` bounded for ``target`` at ``now``, with a note per change made."""
    notes: list[str] = []
    reason = intent.reason[: limits.MAX_REASON_LENGTH]
    result = replace(intent, reason=reason)
    if intent.verb is Verb.INTERVAL_HINT:
        result = _clamp_hint(result, target, notes)
    elif intent.verb is Verb.ONE_SHOT:
        result = _clamp_one_shot(result, target, now, notes)
        if result.at is not None and result.at > now + MAX_PLANNER_ONE_SHOT_AHEAD:
            refusal = "The endpoint's cooldown ends too far ahead for a planner one-shot."
            return Clamped(result, tuple(notes), refusal)
    elif intent.verb is Verb.PAUSE:
        result = _clamp_pause(result, now, notes)
    return Clamped(result, tuple(notes))


def _clamp_ttl(ttl: timedelta | None, notes: list[str]) -> timedelta:
    wanted = ttl if ttl is not None else limits.DEFAULT_HINT_TTL
    bounded = _bound(wanted, MIN_PLANNER_TTL, MAX_PLANNER_TTL)
    if bounded != wanted:
        notes.append(f"TTL {wanted.total_seconds():g} s bounded to {bounded.total_seconds():g} s.")
    return bounded


def _clamp_hint(intent: Intent, target: Endpoint, notes: list[str]) -> Intent:
    low, high = interval_bounds(target)
    wanted = intent.interval if intent.interval is not None else low
    interval = _bound(wanted, low, high)
    if interval != wanted:
        notes.append(
            f"Interval {wanted.total_seconds():g} s clamped to {interval.total_seconds():g} s "
            "by the endpoint's guardrails."
        )
    return replace(intent, interval=interval, ttl=_clamp_ttl(intent.ttl, notes), at=None)


def _clamp_one_shot(intent: Intent, target: Endpoint, now: datetime, notes: list[str]) -> Intent:
    wanted = intent.at if intent.at is not None else now
    earliest = now
    cooldown = target.guardrails.min_interval
    if cooldown is not None and target.last_run_at is not None:
        earliest = max(earliest, target.last_run_at + cooldown)
    latest = now + MAX_PLANNER_ONE_SHOT_AHEAD
    # The cooldown wins over the horizon; ``clamp`` refuses what ends up beyond it.
    at = max(earliest, min(latest, wanted))
    if at != wanted:
        notes.append(f"Run time moved from {wanted.isoformat()} to {at.isoformat()}.")
    ttl = (at - now) + ONE_SHOT_GRACE
    return replace(intent, at=at, ttl=ttl, interval=None)


def _clamp_pause(intent: Intent, now: datetime, notes: list[str]) -> Intent:
    latest = now + limits.MAX_PLANNER_PAUSE
    wanted = intent.at if intent.at is not None else latest
    until = max(now + limits.MIN_INTERVAL, min(latest, wanted))
    if until != wanted:
        notes.append(
            f"Pause end moved to {until.isoformat()}: planner pauses last at most "
            f"{limits.MAX_PLANNER_PAUSE.total_seconds() / 3600:g} h."
        )
    return replace(intent, at=until, interval=None, ttl=None)
