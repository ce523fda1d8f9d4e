"""The ``MemoryStore``'s flights: runs of ``overlap=allow`` endpoints in flight,
with the semantics of ``adapters.store.flights`` (read its docstring first)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from cadenza.domain import lifecycle
from cadenza.domain.lifecycle import CutFlight
from cadenza.domain.model import Delivery, Endpoint, Run
from cadenza.ids import new_id
from cadenza.ports import Claim, Completed, Completion
from cadenza.testing.memory_tx import Tables

FlightKey = tuple[str, int]
"""(endpoint id, epoch of the claim the flight came from)."""


@dataclass(frozen=True, slots=True)
class Flight(CutFlight):
    until: datetime


def claimable(t: Tables) -> Callable[[Endpoint], bool]:
    """Whether an endpoint has fewer than ``max_in_flight`` runs in flight."""
    counts = Counter(endpoint_id for endpoint_id, _ in t.flights)
    return lambda ep: counts[ep.id] < ep.max_in_flight


def launch(t: Tables, worker_id: str, claims: Sequence[Claim], now: datetime) -> list[str]:
    lost: list[str] = []
    for claim in claims:
        ep = t.endpoints.get(claim.endpoint.id)
        lease = None if ep is None else ep.lease
        if ep is None or lease is None or (lease.owner, lease.epoch) != (worker_id, claim.epoch):
            lost.append(claim.endpoint.id)
            continue
        job = t.jobs[ep.job_id]
        t.endpoints[ep.id] = lifecycle.launched(
            ep, job, claim.scheduled_for, claim.source, now, now
        )
        t.claimed.pop(ep.id, None)
        t.started.pop(ep.id, None)
        t.flights[(ep.id, claim.epoch)] = Flight(
            scheduled_for=claim.scheduled_for,
            started_at=now,
            source=claim.source,
            attempt=claim.attempt,
            owner=worker_id,
            until=lease.until,
        )
    return lost


def extend(t: Tables, worker_id: str, claims: Sequence[Claim], until: datetime) -> set[str]:
    kept: set[str] = set()
    for claim in claims:
        key = (claim.endpoint.id, claim.epoch)
        flight = t.flights.get(key)
        if flight is not None and flight.owner == worker_id:
            t.flights[key] = replace(flight, until=until)
            kept.add(claim.endpoint.id)
    return kept


def land(t: Tables, worker_id: str, completions: Sequence[Completion], now: datetime) -> Completed:
    """The runs are recorded already; land each flight still ours."""
    lost: list[str] = []
    for done in completions:
        key = (done.claim.endpoint.id, done.claim.epoch)
        flight = t.flights.get(key)
        if flight is None or flight.owner != worker_id:
            lost.append(key[0])
            continue
        del t.flights[key]
        _fold(t, key[0], done.run, now)
    slots = [
        ep.next_run_at
        for done in completions
        if (ep := t.endpoints[done.claim.endpoint.id]).lease is None and ep.next_run_at
    ]
    return Completed(lost, min(slots, default=None))


def _fold(t: Tables, endpoint_id: str, run: Run, now: datetime) -> None:
    ep = t.endpoints[endpoint_id]
    job = t.jobs[ep.job_id]
    folded, newest = lifecycle.after_overlapping_run(
        ep, job, run, t.outcome_for.get(endpoint_id), now
    )
    if ep.lease is not None or ep.attempt > 1:  # that slot stands
        folded = replace(
            folded,
            next_run_at=ep.next_run_at,
            next_run_source=ep.next_run_source,
            attempt=ep.attempt,
        )
    t.endpoints[endpoint_id] = replace(folded, lease=ep.lease)
    if newest is not None:
        t.outcome_for[endpoint_id] = newest


def sweep(
    t: Tables, keys: Sequence[FlightKey], now: datetime, record: Callable[[Run], bool]
) -> list[Run]:
    """Free these flights; ``record`` inserts a run unless its slot is recorded."""
    recorded: list[Run] = []
    retrying: set[str] = set()
    for key in keys:
        flight, ep = t.flights[key], t.endpoints[key[0]]
        job = t.jobs[ep.job_id]
        once = ep.delivery is Delivery.AT_MOST_ONCE
        retry = not once and not (ep.archived or job.archived)
        paused = ep.paused(now) or job.paused(now)
        if retry and (ep.lease is not None or ep.attempt > 1 or ep.id in retrying or paused):
            if not paused:  # due for the expiry sweep (see adapters.store.flights)
                t.flights[key] = replace(flight, until=min(flight.until, now))
            continue
        run = lifecycle.swept_flight_run(ep, flight, new_id("run", now), now)
        del t.flights[key]
        if record(run):
            recorded.append(run)
        if not retry:
            if once:
                _fold(t, ep.id, run, now)
            continue
        retrying.add(ep.id)
        t.endpoints[ep.id] = replace(
            ep,
            next_run_at=flight.scheduled_for,
            next_run_source=flight.source,
            attempt=flight.attempt + 1,
        )
    return recorded
