"""When an endpoint is analysed next. Pure: each function returns a new ``WatchState``.

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


def after_analysis(
    watch: WatchState, look_again_at: datetime | None, now: datetime, *, fired: tuple[str, ...]
) -> WatchState:
    """Clear the due time the analysis served; keep the planner's request for later.

    Triggers that arrived during the analysis were written to the store and are
    merged by the caller, so clearing here only concerns this analysis.
    """
    done = replace(
        watch,
        due_at=None,
        errors=0,
        fired={**watch.fired, **dict.fromkeys(fired, now)},
    )
    if look_again_at is None:
        return done
    return _due(done, look_again_at, Trigger.REQUESTED)


ERROR_BACKOFF = timedelta(seconds=30)
MAX_ERROR_BACKOFF = timedelta(hours=1)


def after_error(watch: WatchState, now: datetime) -> WatchState:
    """Retry a failed analysis later, doubling the wait each time up to an hour."""
    errors = watch.errors + 1
    wait = min(MAX_ERROR_BACKOFF, ERROR_BACKOFF * 2 ** min(errors - 1, 10))
    return replace(watch, due_at=now + wait, trigger=watch.trigger, errors=errors)
