"""Pure state transitions of an endpoint. Each returns a new endpoint, replanned.

Every transition that changes a governor input ends in ``replan`` so that
``next_run_at`` moves at once, earlier or later (SCHEDULING.md §2, last paragraph).
Expired hints are dropped at every write (§2 rule 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cadenza.domain import errors
from cadenza.domain.catchup import BASELINE_SOURCES, standing_slot
from cadenza.domain.governor import not_served, plan_next_run
from cadenza.domain.limits import MAX_ONE_SHOTS
from cadenza.domain.model import (
    Delivery,
    Endpoint,
    IntervalHint,
    Job,
    OneShot,
    Pause,
    PlanSource,
    Run,
    RunStatus,
    evolve,
)
from cadenza.domain.retry_after import not_before


def without_expired_hints(endpoint: Endpoint, now: datetime) -> Endpoint:
    hint = endpoint.interval_hint
    shots = endpoint.one_shots
    pause = endpoint.pause
    keep_hint = hint if hint is not None and hint.fresh(now) else None
    keep_shots = tuple(shot for shot in shots if shot.fresh(now))
    keep_pause = pause if pause is not None and pause.active(now) else None
    if keep_hint is hint and len(keep_shots) == len(shots) and keep_pause is pause:
        return endpoint
    return evolve(endpoint, interval_hint=keep_hint, one_shots=keep_shots, pause=keep_pause)


def replan(endpoint: Endpoint, job: Job, now: datetime) -> Endpoint:
    """Drop expired hints and recompute ``next_run_at`` from the current inputs."""
    current = without_expired_hints(endpoint, now)
    plan = plan_next_run(now, current, job)
    return evolve(current, next_run_at=plan.next_run_at, next_run_source=plan.source)


def after_run(endpoint: Endpoint, job: Job, run: Run, now: datetime) -> Endpoint:
    """Fold a finished run into the runtime state, release the lease, and replan.

    A run consumes every queued one-shot due by its start (``governor.not_served``). Success
    resets the failure count (ending backoff); an ``unknown`` outcome (cut short by a
    shutdown or a dead worker) leaves both counts alone, as it says nothing of the
    target; any other status increments it. A late baseline run stands for the last
    slot due before it started (``catchup.standing_slot``), so a catch-up happens
    once and keeps the lattice. A 429/503 asking to wait holds the next run back
    (``retry_after.not_before``).
    """
    ok = run.status.ok
    slot = run.scheduled_for
    if run.source in BASELINE_SOURCES:
        slot = standing_slot(endpoint, slot, run.started_at)
    failures, streak = endpoint.failure_count, endpoint.success_streak
    if run.status is not RunStatus.UNKNOWN:
        failures, streak = (0, streak + 1) if ok else (failures + 1, 0)
    ran = evolve(
        endpoint,
        one_shots=not_served(endpoint.one_shots, run.started_at),
        last_run_at=run.started_at,
        last_scheduled_for=slot,
        last_status=run.status,
        failure_count=failures,
        success_streak=streak,
        attempt=1,
        retry_after_until=not_before(run),
        lease=None,
    )
    return replan(ran, job, now)


def launched(
    endpoint: Endpoint,
    job: Job,
    slot: datetime,
    source: PlanSource,
    started_at: datetime,
    now: datetime,
) -> Endpoint:
    """``overlap=allow``: the run of ``slot`` leaves and the endpoint moves on at once.

    What ``after_run`` does when a run ends, minus its outcome: the slot (standing
    for a late baseline run's last due slot) and the start become ``last_*``, the
    one-shots due by its start are served, and the next run is planned, so the next
    slot can be claimed while this one is in flight. Neither moves back: a slot run
    again after a lost attempt is older than the one already recorded.
    """
    if source in BASELINE_SOURCES:
        slot = standing_slot(endpoint, slot, started_at)
    previous, last_start = endpoint.last_scheduled_for, endpoint.last_run_at
    ran = evolve(
        endpoint,
        one_shots=not_served(endpoint.one_shots, started_at),
        last_run_at=started_at if last_start is None else max(last_start, started_at),
        last_scheduled_for=slot if previous is None else max(previous, slot),
        attempt=1,
        lease=None,
    )
    return replan(ran, job, now)


def after_overlapping_run(
    endpoint: Endpoint, job: Job, run: Run, newest: datetime | None, now: datetime
) -> tuple[Endpoint, datetime | None]:
    """``overlap=allow``: fold the outcome of a run ``launched`` earlier; returns the
    endpoint, replanned, and the slot of the newest outcome folded so far.

    Runs of one endpoint may finish in any order. An outcome counts only if its slot
    is not older than ``newest``, the slot of the last one folded: a run that
    finishes after a later one is recorded, but the endpoint's outcome (last status,
    failure count and backoff, success streak, Retry-After) stays the later run's.
    The slot and start were recorded at launch and are not touched.
    """
    if newest is not None and run.scheduled_for < newest:
        return replan(endpoint, job, now), newest
    failures, streak = endpoint.failure_count, endpoint.success_streak
    if run.status is not RunStatus.UNKNOWN:
        failures, streak = (0, streak + 1) if run.status.ok else (failures + 1, 0)
    folded = evolve(
        endpoint,
        last_status=run.status,
        failure_count=failures,
        success_streak=streak,
        retry_after_until=not_before(run),
    )
    return replan(folded, job, now), run.scheduled_for


def swept_error(owner: str, sent: bool, delivery: Delivery) -> str:
    """Why a swept lease's attempt is recorded as it is (the SQL store and its fake)."""
    died = f"Worker {owner!r} stopped reporting before the attempt finished"
    if not sent:
        return f"{died}; its request was never sent, so the slot runs again."
    if delivery is Delivery.AT_MOST_ONCE:
        return f"{died}; its request was sent, outcome unknown; at_most_once: not sent again."
    return (
        f"{died}; its request was sent, outcome unknown; at_least_once: sent again "
        "with the same Idempotency-Key."
    )


@dataclass(frozen=True, slots=True)
class CutFlight:
    """An ``overlap=allow`` run whose worker died in flight, as the stores keep it."""

    scheduled_for: datetime
    started_at: datetime
    source: PlanSource
    attempt: int
    owner: str


def swept_flight_run(endpoint: Endpoint, flight: CutFlight, run_id: str, now: datetime) -> Run:
    """The record of a dead worker's flight (the SQL store and its fake): a flight
    exists only once its request was about to leave, so its outcome is unknown."""
    return Run(
        id=run_id,
        endpoint_id=endpoint.id,
        job_id=endpoint.job_id,
        tenant_id=endpoint.tenant_id,
        scheduled_for=flight.scheduled_for,
        started_at=flight.started_at,
        finished_at=now,
        status=RunStatus.UNKNOWN,
        source=flight.source,
        attempt=flight.attempt,
        error=swept_error(flight.owner, True, endpoint.delivery),
        worker_id=flight.owner,
    )


def with_interval_hint(endpoint: Endpoint, job: Job, hint: IntervalHint, now: datetime) -> Endpoint:
    return replan(evolve(endpoint, interval_hint=hint), job, now)


def with_one_shot(endpoint: Endpoint, job: Job, shot: OneShot, now: datetime) -> Endpoint:
    """``shot`` queued in ``run_at`` order (after any due at the same time); refused
    with ``OneShotQueueFull`` when ``MAX_ONE_SHOTS`` live ones are queued already."""
    queue = without_expired_hints(endpoint, now).one_shots
    if len(queue) >= MAX_ONE_SHOTS:
        raise errors.OneShotQueueFull(
            f"{len(queue)} one-shots are queued on this endpoint, the most allowed; "
            "cancel one (cancel_one_shot) or wait until one has run."
        )
    place = sum(1 for other in queue if other.run_at <= shot.run_at)
    queued = (*queue[:place], shot, *queue[place:])
    return replan(evolve(endpoint, one_shots=queued), job, now)


def without_one_shot(endpoint: Endpoint, job: Job, one_shot_id: str, now: datetime) -> Endpoint:
    """The queue without one-shot ``one_shot_id``; ``OneShotNotFound`` if it is not
    queued (never was, already ran, cancelled or expired)."""
    queue = without_expired_hints(endpoint, now).one_shots
    kept = tuple(shot for shot in queue if shot.id != one_shot_id)
    if len(kept) == len(queue):
        raise errors.OneShotNotFound(one_shot_id)
    return replan(evolve(endpoint, one_shots=kept), job, now)


def paused(endpoint: Endpoint, job: Job, pause: Pause, now: datetime) -> Endpoint:
    return replan(evolve(endpoint, pause=pause), job, now)


def resumed(endpoint: Endpoint, job: Job, now: datetime) -> Endpoint:
    return replan(evolve(endpoint, pause=None), job, now)


def hints_cleared(endpoint: Endpoint, job: Job, now: datetime) -> Endpoint:
    """Back to the baseline: interval hint and every queued one-shot dropped (a
    pause stays)."""
    return replan(evolve(endpoint, interval_hint=None, one_shots=()), job, now)


def failures_reset(endpoint: Endpoint, job: Job, now: datetime) -> Endpoint:
    return replan(evolve(endpoint, failure_count=0), job, now)
