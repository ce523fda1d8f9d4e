"""Runs of ``overlap=allow`` endpoints in flight (``tables.flights``).

With ``overlap=skip`` (the default) an endpoint's lease lasts from its claim to the
completion of its run, so a slot due meanwhile waits (``scheduling``); none of this
module runs for it. With ``allow`` the claim is the same, but as the run starts
(``launch``, before its request leaves) one transaction, fenced on the claim's lease:

* moves the lease to a row of ``flights`` keyed by (endpoint, epoch), lasting as
  long as the lease did and renewed like it (``extend``);
* replans the endpoint as though the run had begun (``lifecycle.launched``: the
  slot and start become ``last_*``), releases its lease and counts ``in_flight`` up.

So the next slot can be claimed and started while the run is in flight; the claim
takes an endpoint only while ``in_flight < max_in_flight``. Each flight keeps its
own epoch: a worker whose flight was swept cannot write, whatever it claimed since.

``complete`` is fenced on the flight row: a swept flight's worker records only its
run (replacing the sweeper's record, as for leases) and is reported ``lost``. It
deletes the flight, counts ``in_flight`` down and folds the outcome into the
endpoint's current row (``lifecycle.after_overlapping_run``: runs finish in any
order; the newest slot's outcome stands). While the endpoint is leased for its next
slot, or holds a lost slot to run again, its ``next_run_at`` is left alone.

``sweep`` frees an expired flight, or one of a dead worker, as the sweeper frees a
started lease: recorded ``unknown`` (its request left, or was about to); then
``at_most_once`` folds it as such, and ``at_least_once`` runs its slot again as the
next attempt (the endpoint's ``next_run_at`` goes back to it), which waits while the
endpoint is leased or already runs a lost slot again: such a flight is then made
due for the expiry sweep (``until`` = now), which settles it at a later sweep (a
paused one keeps its ``until``: it waits for the resume). So a
dead worker's every cut flight runs again soon, one at a time, not once its lease
would have run out; and ``launch`` settles such a flight (another worker's) of the
endpoints it just unleased, so an endpoint leased most of the time (a slot a second, claimed ahead)
does not starve it. Each flight is settled on its own: one dead worker's runs never
hold back another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cadenza.adapters.store.codec import Codec, endpoint_state
from cadenza.adapters.store.dialect import Dialect
from cadenza.adapters.store.tables import UtcDateTime, endpoints, flights, jobs, runs
from cadenza.domain import errors, lifecycle
from cadenza.domain.model import Delivery, Endpoint, Job, PlanSource, Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Claim, Completed, Completion

_E, _F = endpoints.c, flights.c
_RELEASED: dict[str, Any] = {
    "lease_owner": None,
    "lease_until": None,
    "lease_slot": None,
    "lease_claimed_at": None,
    "lease_started_at": None,
}
_FLIGHT = sa.and_(
    _F.endpoint_id == sa.bindparam("b_id"),
    _F.epoch == sa.bindparam("b_epoch"),
    _F.owner == sa.bindparam("b_owner"),
)
_EXTEND = flights.update().where(_FLIGHT).values(until=sa.bindparam("until", UtcDateTime()))
_LANDED = flights.delete().where(_FLIGHT)
_EXPIRED = (
    sa.select(flights)
    .where(_F.until < sa.bindparam("now", UtcDateTime()))
    .order_by(_F.until)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
    .with_for_update(skip_locked=True)
)
_DUE_OF = (
    sa.select(flights)
    .where(
        _F.endpoint_id.in_(sa.bindparam("ids", expanding=True)),
        _F.until < sa.bindparam("now", UtcDateTime()),
        _F.owner != sa.bindparam("keep"),
    )
    .order_by(_F.until)
    .with_for_update(skip_locked=True)
)
_OF_OWNERS = (
    sa.select(flights)
    .where(_F.owner.in_(sa.bindparam("owners", expanding=True)))
    .with_for_update(skip_locked=True)
)
_OF_OTHERS = (
    sa.select(flights).where(_F.owner != sa.bindparam("keep")).with_for_update(skip_locked=True)
)


class FlightStore:
    """The flights of one ``SqlStore``, on its connections and codec."""

    def __init__(self, dialect: Dialect, codec: Codec) -> None:
        self._d = dialect
        self._codec = codec

    async def _current(
        self, conn: AsyncConnection, ids: Sequence[str]
    ) -> dict[str, tuple[Endpoint, Job, Any]]:
        """Each endpoint (locked until commit on PostgreSQL), its job and its row."""
        rows = (
            await conn.execute(
                sa.select(endpoints).where(_E.id.in_(set(ids))).order_by(_E.id).with_for_update()
            )
        ).all()
        job_ids = {r.job_id for r in rows}
        job_rows = (await conn.execute(sa.select(jobs).where(jobs.c.id.in_(job_ids)))).all()
        by_id = {r.id: self._codec.job(r) for r in job_rows}
        return {r.id: (self._codec.endpoint(r), by_id[r.job_id], r) for r in rows}

    async def launch(
        self, conn: AsyncConnection, worker_id: str, claims: Sequence[Claim], now: datetime
    ) -> list[str]:
        """Move each claim's lease to a flight and replan its endpoint; returns the ids
        whose lease is no longer ours (their requests must not go)."""
        current = await self._current(conn, [c.endpoint.id for c in claims])
        lost: list[str] = []
        for claim in claims:
            found = current.get(claim.endpoint.id)
            lease = None if found is None else found[0].lease
            if (
                found is None
                or lease is None
                or (lease.owner, lease.epoch)
                != (
                    worker_id,
                    claim.epoch,
                )
            ):
                lost.append(claim.endpoint.id)
                continue
            endpoint, job, _ = found
            moved = lifecycle.launched(endpoint, job, claim.scheduled_for, claim.source, now, now)
            await conn.execute(
                endpoints.update()
                .where(_E.id == endpoint.id, _E.lease_epoch == claim.epoch)
                .values(**endpoint_state(moved), **_RELEASED, in_flight=_E.in_flight + 1)
            )
            await conn.execute(
                flights.insert().values(
                    endpoint_id=endpoint.id,
                    epoch=claim.epoch,
                    owner=worker_id,
                    until=lease.until,
                    scheduled_for=claim.scheduled_for,
                    attempt=claim.attempt,
                    source=claim.source.value,
                    started_at=now,
                )
            )
        # Just unleased: another worker's cut flight of these endpoints, waiting to run
        # its slot again, may now (flights locked by others are skipped: no waits).
        launched = [c.endpoint.id for c in claims if c.endpoint.id not in lost]
        if launched:
            due = {"ids": launched, "now": now, "keep": worker_id}
            await self.sweep(conn, _DUE_OF, due, now)
        return lost

    async def extend(
        self, conn: AsyncConnection, worker_id: str, claims: Sequence[Claim], until: datetime
    ) -> set[str]:
        """Renew the flights of ``claims``; returns the endpoint ids renewed."""
        kept: set[str] = set()
        for claim in claims:
            fence = {"b_id": claim.endpoint.id, "b_epoch": claim.epoch, "b_owner": worker_id}
            if (await conn.execute(_EXTEND, {**fence, "until": until})).rowcount:
                kept.add(claim.endpoint.id)
        return kept

    async def complete(
        self,
        conn: AsyncConnection,
        worker_id: str,
        completions: Sequence[Completion],
        now: datetime,
    ) -> Completed:
        """Record the runs; land each flight still ours, folding its outcome."""
        await _insert_runs(self._d, conn, [c.run for c in completions])
        # Flights before endpoints, in the sweeper's order: neither waits on the other
        # while holding what the other needs.
        keys = [(c.claim.endpoint.id, c.claim.epoch) for c in completions]
        await conn.execute(
            sa.select(_F.endpoint_id)
            .where(sa.tuple_(_F.endpoint_id, _F.epoch).in_(keys))
            .order_by(_F.endpoint_id, _F.epoch)
            .with_for_update()
        )
        current = await self._current(conn, [c.claim.endpoint.id for c in completions])
        landed: dict[str, _Landed] = {}
        lost: list[str] = []
        for done in sorted(completions, key=lambda c: c.run.finished_at):
            claim = done.claim
            fence = {"b_id": claim.endpoint.id, "b_epoch": claim.epoch, "b_owner": worker_id}
            found = current.get(claim.endpoint.id)
            if found is None or not (await conn.execute(_LANDED, fence)).rowcount:
                lost.append(claim.endpoint.id)
                continue
            state = landed.get(claim.endpoint.id)
            if state is None:
                state = landed[claim.endpoint.id] = _Landed(found[0], found[2].outcome_for)
            state.fold(found[1], done.run, now)
        slots = [await self._write(conn, state, current) for state in landed.values()]
        ahead = [s for s in slots if s is not None]
        return Completed(lost, min(ahead, default=None))

    async def _write(
        self,
        conn: AsyncConnection,
        state: _Landed,
        current: dict[str, tuple[Endpoint, Job, Any]],
    ) -> datetime | None:
        """Write a landed endpoint's state; its next slot, unless it is leased."""
        values = endpoint_state(state.endpoint)
        row = current[state.endpoint.id][2]
        leased = row.lease_owner is not None
        if leased or row.attempt > 1:
            # The lease holder's slot, or a lost slot to run again, stands: the run
            # that takes it replans as it starts.
            del values["next_run_at"], values["next_run_source"], values["attempt"]
        await conn.execute(
            endpoints.update()
            .where(_E.id == state.endpoint.id)
            .values(**values, outcome_for=state.newest, in_flight=_E.in_flight - state.landed)
        )
        return None if leased else state.endpoint.next_run_at

    async def sweep(
        self, conn: AsyncConnection, select: Any, params: dict[str, Any], now: datetime
    ) -> list[Run]:
        """Free the flights ``select`` finds (see the module docstring)."""
        rows = (await conn.execute(select, params)).all()
        if not rows:
            return []
        current = await self._current(conn, [r.endpoint_id for r in rows])
        recorded: list[Run] = []
        retrying: set[str] = set()
        for row in rows:
            found = current.get(row.endpoint_id)
            if found is None:
                continue
            endpoint, job, ep_row = found
            once = endpoint.delivery is Delivery.AT_MOST_ONCE
            retry = not once and not (endpoint.archived or job.archived)
            if retry and _retry_waits(endpoint, job, ep_row, now, retrying):
                # Swept again later; the flight keeps its place meanwhile. A dead
                # worker's is due now, unless paused (a person's stop, maybe long):
                # the expiry sweep settles it as soon as it may, rather than once its
                # lease would have run out.
                if row.until > now and not (endpoint.paused(now) or job.paused(now)):
                    fence = {"b_id": row.endpoint_id, "b_epoch": row.epoch, "b_owner": row.owner}
                    await conn.execute(_EXTEND, {**fence, "until": now})
                continue
            flight = lifecycle.CutFlight(
                row.scheduled_for, row.started_at, PlanSource(row.source), row.attempt, row.owner
            )
            run = lifecycle.swept_flight_run(endpoint, flight, new_id("run", now), now)
            await _record_swept(self._d, conn, run)
            await conn.execute(
                _LANDED, {"b_id": row.endpoint_id, "b_epoch": row.epoch, "b_owner": row.owner}
            )
            if not retry:
                state = _Landed(endpoint, ep_row.outcome_for)
                if once:
                    state.fold(job, run, now)
                else:
                    state.landed = 1
                await self._write(conn, state, current)
            else:
                retrying.add(endpoint.id)
                await conn.execute(
                    endpoints.update()
                    .where(_E.id == endpoint.id)
                    .values(
                        next_run_at=row.scheduled_for,
                        next_run_source=row.source,
                        attempt=row.attempt + 1,
                        in_flight=_E.in_flight - 1,
                    )
                )
            recorded.append(run)
        return recorded

    @staticmethod
    def expired(now: datetime, limit: int) -> tuple[Any, dict[str, Any]]:
        return _EXPIRED, {"now": now, "limit": limit}

    @staticmethod
    def held_by(owners: Sequence[str] | None, keep: str) -> tuple[Any, dict[str, Any]]:
        if owners is None:
            return _OF_OTHERS, {"keep": keep}
        return _OF_OWNERS, {"owners": list(owners)}


@dataclass(slots=True)
class _Landed:
    """An endpoint whose flights landed in this transaction, folded one by one."""

    endpoint: Endpoint
    newest: datetime | None
    landed: int = field(default=0)

    def fold(self, job: Job, run: Run, now: datetime) -> None:
        self.endpoint, self.newest = lifecycle.after_overlapping_run(
            self.endpoint, job, run, self.newest, now
        )
        self.landed += 1


def _retry_waits(endpoint: Endpoint, job: Job, row: Any, now: datetime, retrying: set[str]) -> bool:
    """Whether a lost flight's slot must wait to run again: the endpoint is leased
    (its next slot claimed), already has a slot to run again, or is paused (a
    person's stop: the slot runs again after the resume)."""
    return (
        row.lease_owner is not None
        or endpoint.attempt > 1
        or endpoint.id in retrying
        or endpoint.paused(now)
        or job.paused(now)
    )


async def _record_swept(d: Dialect, conn: AsyncConnection, run: Run) -> None:
    insert = d.insert(runs).on_conflict_do_nothing(
        index_elements=["endpoint_id", "scheduled_for", "attempt"]
    )
    await conn.execute(insert, Codec.run_row(run))


async def _insert_runs(d: Dialect, conn: AsyncConnection, recorded: Sequence[Run]) -> None:
    """Insert the runs; a swept flight's ``lost``/``unknown`` record is replaced."""
    for run in recorded:
        stmt = d.insert(runs).values(Codec.run_row(run))
        stmt = stmt.on_conflict_do_update(
            index_elements=["endpoint_id", "scheduled_for", "attempt"],
            set_={c.name: stmt.excluded[c.name] for c in runs.c},
            where=runs.c.status.in_((RunStatus.LOST.value, RunStatus.UNKNOWN.value)),
        )
        if not (await conn.execute(stmt)).rowcount:
            raise errors.Conflict(
                "A run of this batch is already recorded for its endpoint, slot and attempt "
                "(only a 'lost' record may be replaced); nothing was written."
            )
