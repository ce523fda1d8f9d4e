"""Slots found stale when claimed: after downtime, a worker may claim a slot whose
time passed long ago. ``catch_up`` decides what happens (SCHEDULING.md §1):

* ``run_once``: the stale slot runs now and stands for every slot it collapses;
  the others are counted as missed on its run.
* ``skip``: a slot whose *successor* has already come is missed outright: it does
  not run, and the endpoint is replanned onto the next slot after now. A slot that
  is merely late (its successor still ahead) runs, whatever the policy.

Only baseline slots catch up; a hint's or a one-shot's slot always runs. An
on-demand endpoint has no baseline slots (one whose baseline was removed while a
baseline slot was in flight: that slot stands for itself and is never skipped).

Whichever slot a late baseline run was claimed for, it *stands for* the last
baseline slot that came due before it started (``standing_slot``), and that slot
becomes ``last_scheduled_for``. So a ``run_once`` catch-up is one run: the endpoint
resumes on its original lattice (interval) or at the next fire (cron) instead of
catching up again from the stale slot, and the next on-time run counts no missed
slot the catch-up already counted. Slots are counted on the lattice the run was
planned on, stretched by failure backoff: a slot that backoff skipped is not missed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cadenza.domain.limits import MAX_BACKOFF_EXPONENT
from cadenza.domain.model import CatchUp, Endpoint, PlanSource
from cadenza.domain.schedule import IntervalSchedule

BASELINE_SOURCES = frozenset({PlanSource.BASELINE_CRON, PlanSource.BASELINE_INTERVAL})


def next_baseline_slot(endpoint: Endpoint, slot: datetime) -> datetime | None:
    """The baseline slot after ``slot``, with the same backoff the governor applies."""
    baseline = endpoint.baseline
    if baseline is None:
        return None
    if isinstance(baseline, IntervalSchedule):
        return slot + baseline.every * (1 << min(endpoint.failure_count, MAX_BACKOFF_EXPONENT))
    return baseline.next_after(slot)


def standing_slot(endpoint: Endpoint, scheduled_for: datetime, started_at: datetime) -> datetime:
    """The baseline slot a run of ``scheduled_for`` that started at ``started_at``
    stands for: the last slot at or before its start, never before ``scheduled_for``."""
    baseline = endpoint.baseline
    if baseline is None:
        return scheduled_for
    if isinstance(baseline, IntervalSchedule):
        return _standing_interval_slot(endpoint, baseline, scheduled_for, started_at)
    latest = scheduled_for
    for fire in baseline.fires_after(scheduled_for):
        if fire > started_at or fire - scheduled_for > _MAX_CATCH_UP_SPAN:
            break
        latest = fire
    return latest


_MAX_CATCH_UP_SPAN = timedelta(days=366)
"""Searching for a late cron run's standing fire stops a year on; bounds the loop."""


def _standing_interval_slot(
    endpoint: Endpoint, interval: IntervalSchedule, scheduled_for: datetime, started_at: datetime
) -> datetime:
    step = interval.every * (1 << min(endpoint.failure_count, MAX_BACKOFF_EXPONENT))
    previous = endpoint.last_scheduled_for
    if previous is not None and scheduled_for >= previous + step:
        # A catch-up planned at "now" (after a pause, say) is off the lattice: measure
        # from the last slot so that the lattice keeps its phase.
        return previous + step * ((max(started_at, scheduled_for) - previous) // step)
    if previous is not None:
        return scheduled_for
    return scheduled_for + step * max(0, (started_at - scheduled_for) // step)


def skips(endpoint: Endpoint, source: PlanSource, slot: datetime, now: datetime) -> bool:
    """Whether a claimed ``slot`` is to be skipped instead of run (see module doc)."""
    if endpoint.catch_up is not CatchUp.SKIP or source not in BASELINE_SOURCES:
        return False
    successor = next_baseline_slot(endpoint, slot)
    return successor is not None and successor <= now
