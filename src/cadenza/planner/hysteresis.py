"""Hysteresis: hold back proposals that would only make the cadence flap.

Pure. Three layers keep cadence steady:

1. rules fire only when their conditions hold for ``for_runs`` runs in a row, and
   not again within their cooldown (``cadenza.planner.rules``);
2. the built-in policies use different thresholds to enter and to leave a state
   (e.g. tighten after 3 failures, clear only after 2 successes);
3. ``hold_back`` (here) drops a proposal whose effect is already in place: an
   interval hint within ``TOLERANCE`` of the fresh one with at least half its TTL
   left, a one-shot when one is queued at about that time (within ``TOLERANCE`` of
   how far ahead it is, at least ``ONE_SHOT_GRACE``), a pause shorter than the one in
   force, a resume of an endpoint that is not paused, a clear with nothing to clear.

Runs without new information therefore never rewrite the schedule.
"""

from __future__ import annotations

from datetime import datetime

from cadenza.domain.model import Endpoint
from cadenza.domain.planning import ONE_SHOT_GRACE, Verb
from cadenza.planner.port import Intent

TOLERANCE = 0.2
"""Interval hints closer than this (relative) to the one in force are not rewritten;
one-shots closer than this (relative to how far ahead they are) to a queued one are
not queued."""


def hold_back(intent: Intent, target: Endpoint, now: datetime) -> str | None:
    """Why ``intent`` (already clamped) should not be applied, or ``None`` to apply it."""
    if intent.verb is Verb.INTERVAL_HINT:
        return _same_hint(intent, target, now)
    if intent.verb is Verb.ONE_SHOT:
        return _same_one_shot(intent, target, now)
    if intent.verb is Verb.PAUSE:
        pause = target.pause
        in_force = pause is not None and pause.active(now)
        if in_force and pause is not None and _covers(pause.until, intent.at):
            return "The endpoint is already paused at least that long."
        return None
    if intent.verb is Verb.RESUME:
        return None if target.paused(now) else "The endpoint is not paused."
    fresh_hint = target.interval_hint is not None and target.interval_hint.fresh(now)
    fresh_shot = any(shot.fresh(now) for shot in target.one_shots)
    return None if fresh_hint or fresh_shot else "There are no hints to clear."


def _same_hint(intent: Intent, target: Endpoint, now: datetime) -> str | None:
    hint = target.interval_hint
    if hint is None or not hint.fresh(now) or intent.interval is None:
        return None
    current = hint.interval.total_seconds()
    wanted = intent.interval.total_seconds()
    close = abs(wanted - current) <= TOLERANCE * current
    remaining = hint.expires_at - now
    long_enough = intent.ttl is None or remaining * 2 >= intent.ttl
    if close and long_enough:
        return (
            f"An interval hint of {current:g} s is already in force "
            f"(within {TOLERANCE:.0%} of {wanted:g} s)."
        )
    return None


def _same_one_shot(intent: Intent, target: Endpoint, now: datetime) -> str | None:
    """A queued one-shot at about the wanted time already does it; reminders days
    apart (7, 14, 21 days) are different one-shots and all queue."""
    if intent.at is None:
        return None
    window = max(ONE_SHOT_GRACE, (intent.at - now) * TOLERANCE)
    for shot in target.one_shots:
        if shot.fresh(now) and abs(shot.run_at - intent.at) <= window:
            return f"A one-shot is already queued at {shot.run_at.isoformat()}."
    return None


def _covers(until: datetime | None, wanted: datetime | None) -> bool:
    return until is None or (wanted is not None and until >= wanted)
