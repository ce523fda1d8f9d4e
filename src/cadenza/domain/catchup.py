"""Slots found stale when claimed: after downtime, a worker may claim a slot whose
time passed long ago. ``catch_up`` decides what happens (SCHEDULING.md §1):

* ``run_once``: the stale slot runs now and stands for every slot it collapses;
  the others are counted as missed on its run.
* ``skip``: a slot whose *successor* has already come is missed outright: it does
  not run, and the endpoint is replanned onto the next slot after now. A slot that
  is merely late (its successor still ahead) runs, whatever the policy.

Only baseline slots catch up; a hint's or a one-shot's slot always runs.
"""

from __future__ import annotations

from datetime import datetime

from cadenza.domain.limits import MAX_BACKOFF_EXPONENT
from cadenza.domain.model import CatchUp, Endpoint, PlanSource
from cadenza.domain.schedule import IntervalSchedule

BASELINE_SOURCES = frozenset({PlanSource.BASELINE_CRON, PlanSource.BASELINE_INTERVAL})


def next_baseline_slot(endpoint: Endpoint, slot: datetime) -> datetime | None:
    """The baseline slot after ``slot``, with the same backoff the governor applies."""
    baseline = endpoint.baseline
    if isinstance(baseline, IntervalSchedule):
        return slot + baseline.every * (1 << min(endpoint.failure_count, MAX_BACKOFF_EXPONENT))
    return baseline.next_after(slot)


def skips(endpoint: Endpoint, source: PlanSource, slot: datetime, now: datetime) -> bool:
    """Whether a claimed ``slot`` is to be skipped instead of run (see module doc)."""
    if endpoint.catch_up is not CatchUp.SKIP or source not in BASELINE_SOURCES:
        return False
    successor = next_baseline_slot(endpoint, slot)
    return successor is not None and successor <= now
