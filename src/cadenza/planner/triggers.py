"""When an endpoint is analysed next. Pure: each function returns a new ``WatchState``.

* **Rules see every run.** An endpoint analysed by the rules planner is evaluated at
  each of its runs as the loop ingests it (``Analyst.evaluate_run``), so its own runs
  make nothing due here; the triggers below serve the LLM planner, and sibling news
  serves both (a rule on a sibling's latest run can wake a paused endpoint).
* **New runs** are debounced per endpoint: the first new run asks for an analysis
  ``debounce`` later, and further runs before then do not push it back, so a busy
  endpoint is analysed at most once per window and never starved.
* **A new failure** (a failed run after a success, or the first run) asks for one
  at once. Further failures of the same episode are debounced like any run.
* **The planner's own request** (``look again at``) is kept unless something
  earlier is already due.
* **A sibling changed** (its status flipped or its response changed): the job's
  paused or idle endpoints are due after the debounce, so an endpoint that stopped
  running is still reconsidered when its siblings' news might wake it.

An earlier due time always wins; a due time is never moved later by a trigger.

While an analysis runs, its watch is **claimed**: due at the analysis's deadline, so
a crashed planner analyses it again then. A trigger arriving meanwhile sets an
earlier due time, and that one trigger is kept for after the analysis: at most one
analysis per endpoint is ever waiting, however many runs arrive.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from cadenza.domain.model import Endpoint, Run
from cadenza.domain.planning import Trigger, WatchState
from cadenza.planner.rules import fingerprint


def _due(watch: WatchState, at: datetime, trigger: Trigger) -> WatchState:
    if watch.due_at is not None and watch.due_at <= at:
        return watch
    return replace(watch, due_at=at, trigger=trigger)


def is_new_failure(run: Run, previous: Run | None) -> bool:
    return not run.status.ok and (previous is None or previous.status.ok)


def is_change(run: Run, previous: Run | None) -> bool:
    """The status flipped or the response changed since the previous run."""
    if previous is None:
        return True
    if run.status.ok is not previous.status.ok:
        return True
    return fingerprint(run) != fingerprint(previous)


def after_run(
    watch: WatchState, run: Run, previous: Run | None, now: datetime, debounce: timedelta
) -> WatchState:
    """The watch of the run's own endpoint after ``run`` was recorded."""
    if is_new_failure(run, previous):
        return _due(watch, now, Trigger.FAILURE)
    return _due(watch, now + debounce, Trigger.NEW_RUNS)


def is_idle(endpoint: Endpoint, now: datetime, idle_after: timedelta) -> bool:
    """Paused, unscheduled, or not due to run within ``idle_after``."""
    if endpoint.paused(now) or endpoint.next_run_at is None:
        return True
    return endpoint.next_run_at > now + idle_after


def after_sibling_change(watch: WatchState, now: datetime, debounce: timedelta) -> WatchState:
    return _due(watch, now + debounce, Trigger.SIBLING_CHANGED)


def claimed(watch: WatchState, until: datetime) -> WatchState:
    """The watch while its analysis runs: due again at ``until`` (the deadline) unless a
    trigger makes it due earlier (module docstring)."""
    return replace(watch, due_at=until)


def after_analysis(
    watch: WatchState,
    look_again_at: datetime | None,
    now: datetime,
    *,
    fired: tuple[str, ...],
    claimed_until: datetime | None = None,
) -> WatchState:
    """Clear the due time the analysis served, keeping a trigger that arrived while it
    ran (the watch is no longer due at ``claimed_until``) and the planner's request
    to look again."""
    arrived = claimed_until is not None and watch.due_at not in (None, claimed_until)
    done = replace(
        watch,
        due_at=watch.due_at if arrived else None,
        errors=0,
        fired={**watch.fired, **dict.fromkeys(fired, now)},
    )
    if look_again_at is None:
        return done
    return _due(done, look_again_at, Trigger.REQUESTED)


ERROR_BACKOFF = timedelta(seconds=30)
MAX_ERROR_BACKOFF = timedelta(hours=1)


def after_evaluation(watch: WatchState, now: datetime, fired: tuple[str, ...]) -> WatchState:
    """After the rules were evaluated at one run: the rules that fired start their
    cooldown; the due time (a sibling's news, a retry) is left as it was."""
    return replace(watch, fired={**watch.fired, **dict.fromkeys(fired, now)})


def after_error(
    watch: WatchState, now: datetime, *, retry_after: timedelta | None = None
) -> WatchState:
    """Retry a failed analysis later, doubling the wait each time up to an hour, and
    never before the model's provider asked (``retry_after``)."""
    errors = watch.errors + 1
    wait = min(MAX_ERROR_BACKOFF, ERROR_BACKOFF * 2 ** min(errors - 1, 10))
    if retry_after is not None:
        wait = max(wait, retry_after)
    return replace(watch, due_at=now + wait, trigger=watch.trigger, errors=errors)


def after_cancel(watch: WatchState, now: datetime) -> WatchState:
    """An analysis cut short by shutdown is due again at once, for the next start."""
    return replace(watch, due_at=now)
