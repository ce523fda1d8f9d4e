"""``MemoryStore``: the fake of ``ports.Store``, with the SQL store's semantics.

One ``asyncio.Lock`` serialises every transaction and scheduler call, so it behaves
like a database with one writer. A transaction that raises is rolled back by
restoring a snapshot taken when it began. Do not call the store from inside one of
its own transactions: the lock is not re-entrant (a deadlock, as on SQLite).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from cadenza.domain import errors, lifecycle
from cadenza.domain.model import (
    Delivery,
    Endpoint,
    Lease,
    Overlap,
    PlanSource,
    Run,
    RunStatus,
)
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import Claim, Completed, Completion, Tx, WorkerInfo
from cadenza.testing import flights
from cadenza.testing.memory_tx import MemoryTx, Tables


class MemoryStore:
    """An in-memory ``Store``; see the module docstring."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._t = Tables()

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[Tables]:
        async with self._lock:
            snapshot = self._t.copy()
            try:
                yield self._t
            except BaseException:
                self._t = snapshot
                raise

    def locked_tables(self) -> AbstractAsyncContextManager[Tables]:
        """The tables under the store's lock, for the fakes that share them."""
        return self._locked()

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        async with self._locked() as tables:
            yield MemoryTx(tables)

    async def claim_due(
        self,
        worker_id: str,
        now: datetime,
        *,
        lookahead: timedelta,
        limit: int,
        lease_margin: timedelta,
    ) -> list[Claim]:
        """Each lease lasts ``endpoint.request.lease_budget + lease_margin`` from ``now``."""
        horizon = now + lookahead
        async with self._locked() as t:
            claimable = flights.claimable(t)
            due = [
                e
                for e in t.endpoints.values()
                if e.lease is None
                and e.next_run_at is not None
                and e.next_run_at <= horizon
                and claimable(e)
            ]
            due.sort(key=lambda e: (e.next_run_at, e.id))
            return [self._claim(t, e, worker_id, now, lease_margin) for e in due[:limit]]

    @staticmethod
    def _claim(t: Tables, ep: Endpoint, worker_id: str, now: datetime, margin: timedelta) -> Claim:
        epoch = t.epochs.get(ep.id, 0) + 1
        t.epochs[ep.id] = epoch
        until = now + ep.request.lease_budget + margin
        leased = replace(ep, lease=Lease(worker_id, until, epoch))
        t.endpoints[ep.id] = leased
        t.claimed[ep.id] = (ep.next_run_at, now)
        assert ep.next_run_at is not None
        source = ep.next_run_source or (
            PlanSource.BASELINE_INTERVAL
            if isinstance(ep.baseline, IntervalSchedule)
            else PlanSource.BASELINE_CRON
        )
        return Claim(leased, ep.next_run_at, source, ep.attempt, epoch)

    async def complete(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> Completed:
        """Record the runs, replan and release every endpoint still ours."""
        lost: list[str] = []
        released: list[datetime] = []
        async with self._locked() as t:
            for done in completions:
                _record(t, done.run)
            landing = [c for c in completions if c.claim.endpoint.overlap is Overlap.ALLOW]
            landed = flights.land(t, worker_id, landing, now)
            lost += landed.lost
            if landed.earliest_next_run is not None:
                released.append(landed.earliest_next_run)
            for done in completions:
                if done.claim.endpoint.overlap is Overlap.ALLOW:
                    continue
                ep = t.endpoints.get(done.claim.endpoint.id)
                if ep is None or not _ours(ep, worker_id, done.claim.epoch):
                    lost.append(done.claim.endpoint.id)
                    continue
                job = t.jobs[ep.job_id]
                replanned = t.endpoints[ep.id] = lifecycle.after_run(ep, job, done.run, now)
                self._unclaim(t, ep.id)
                if replanned.next_run_at is not None:
                    released.append(replanned.next_run_at)
        return Completed(lost, min(released, default=None))

    async def launch(self, worker_id: str, claims: Sequence[Claim], now: datetime) -> list[str]:
        """overlap=allow: each claim's lease becomes its run's flight (``flights``)."""
        async with self._locked() as t:
            lost = flights.launch(t, worker_id, claims, now)
            launched = {c.endpoint.id for c in claims} - set(lost)
            due = sorted(
                (f.until, k)
                for k, f in t.flights.items()
                if k[0] in launched and f.owner != worker_id and f.until < now
            )
            keys = [k for _, k in due]
            flights.sweep(t, keys, now, lambda run: _record_swept(t, run))
            return lost

    async def release(self, worker_id: str, claims: Sequence[Claim]) -> None:
        async with self._locked() as t:
            for claim in claims:
                ep = t.endpoints.get(claim.endpoint.id)
                if ep is not None and _ours(ep, worker_id, claim.epoch):
                    t.endpoints[ep.id] = replace(ep, lease=None)
                    self._unclaim(t, ep.id)

    async def extend_leases(
        self, worker_id: str, claims: Sequence[Claim], until: datetime
    ) -> list[str]:
        """Heartbeat for long runs; returns the ids whose lease is no longer ours."""
        lost: list[str] = []
        async with self._locked() as t:
            flying = flights.extend(t, worker_id, claims, until)
            for claim in claims:
                ep = t.endpoints.get(claim.endpoint.id)
                if ep is None or ep.lease is None or not _ours(ep, worker_id, claim.epoch):
                    if claim.endpoint.id not in flying:
                        lost.append(claim.endpoint.id)
                    continue
                t.endpoints[ep.id] = replace(ep, lease=replace(ep.lease, until=until))
        return lost

    async def mark_started(
        self, worker_id: str, claims: Sequence[Claim], now: datetime
    ) -> list[str]:
        """Record that these claims' requests are about to leave; the ids not ours."""
        lost: list[str] = []
        async with self._locked() as t:
            for claim in claims:
                ep = t.endpoints.get(claim.endpoint.id)
                if ep is None or not _ours(ep, worker_id, claim.epoch):
                    lost.append(claim.endpoint.id)
                else:
                    t.started[ep.id] = now
        return lost

    async def sweep_expired(self, now: datetime, *, limit: int = 1000) -> list[Run]:
        async with self._locked() as t:
            expired = [e for e in t.endpoints.values() if e.lease and e.lease.until < now]
            expired.sort(key=lambda e: (e.lease.until if e.lease else now, e.id))
            swept = [run for ep in expired[:limit] if (run := self._sweep(t, ep, now))]
            late = sorted((f.until, k) for k, f in t.flights.items() if f.until < now)
            keys = [k for _, k in late[:limit]]
            return swept + flights.sweep(t, keys, now, lambda run: _record_swept(t, run))

    async def free_leases_of(
        self, owners: Sequence[str] | None, now: datetime, *, keep: str = ""
    ) -> list[Run]:
        """``sweep_expired`` for every lease of ``owners`` (``None``: all but ``keep``'s)."""
        async with self._locked() as t:
            held = [
                e
                for e in t.endpoints.values()
                if e.lease
                and (e.lease.owner in owners if owners is not None else e.lease.owner != keep)
            ]
            swept = [run for ep in held if (run := self._sweep(t, ep, now))]
            keys = [
                k
                for k, f in t.flights.items()
                if (f.owner in owners if owners is not None else f.owner != keep)
            ]
            return swept + flights.sweep(t, keys, now, lambda run: _record_swept(t, run))

    def _sweep(self, t: Tables, ep: Endpoint, now: datetime) -> Run | None:
        run = _swept_run(t, ep, now)
        recorded = _record_swept(t, run)
        if run.status is RunStatus.UNKNOWN and ep.delivery is Delivery.AT_MOST_ONCE:
            t.endpoints[ep.id] = lifecycle.after_run(ep, t.jobs[ep.job_id], run, now)
        else:
            t.endpoints[ep.id] = replace(ep, attempt=ep.attempt + 1, lease=None)
        self._unclaim(t, ep.id)
        return run if recorded else None

    @staticmethod
    def _unclaim(t: Tables, endpoint_id: str) -> None:
        t.claimed.pop(endpoint_id, None)
        t.started.pop(endpoint_id, None)

    async def due_load(self, horizon: datetime) -> int:
        """Endpoints leased now or due by ``horizon``: the work the live workers share."""
        async with self._locked() as t:
            claimable = flights.claimable(t)
            return sum(
                1
                for e in t.endpoints.values()
                if e.lease is not None
                or (e.next_run_at is not None and e.next_run_at <= horizon and claimable(e))
            )

    async def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` among unleased endpoints, to size the sleep."""
        async with self._locked() as t:
            claimable = flights.claimable(t)
            due = [
                e.next_run_at
                for e in t.endpoints.values()
                if e.lease is None and e.next_run_at is not None and claimable(e)
            ]
            return min(due, default=None)

    async def register_worker(self, info: WorkerInfo) -> None:
        async with self._locked() as t:
            t.workers[info.id] = info

    async def heartbeat_worker(self, worker_id: str, now: datetime) -> None:
        async with self._locked() as t:
            info = t.workers.get(worker_id)
            if info is not None:
                t.workers[worker_id] = replace(info, heartbeat_at=now)

    async def remove_worker(self, worker_id: str) -> None:
        async with self._locked() as t:
            t.workers.pop(worker_id, None)

    async def list_workers(self) -> list[WorkerInfo]:
        async with self._locked() as t:
            return sorted(t.workers.values(), key=lambda w: w.id)

    async def leases_held(self, tenant_id: str | None = None) -> dict[str, int]:
        async with self._locked() as t:
            held: dict[str, int] = {}
            for ep in t.endpoints.values():
                if ep.lease is not None and tenant_id in (None, ep.tenant_id):
                    held[ep.lease.owner] = held.get(ep.lease.owner, 0) + 1
            return held

    async def count_due(self, now: datetime, *, cap: int) -> int:
        async with self._locked() as t:
            claimable = flights.claimable(t)
            due = sum(
                1
                for e in t.endpoints.values()
                if e.lease is None
                and e.next_run_at is not None
                and e.next_run_at <= now
                and claimable(e)
            )
            return min(due, cap)

    async def close(self) -> None:
        return None


def _ours(ep: Endpoint, worker_id: str, epoch: int) -> bool:
    return ep.lease is not None and ep.lease.owner == worker_id and ep.lease.epoch == epoch


def _record(t: Tables, run: Run) -> None:
    """Insert a run; a real result may replace a 'lost' record of the same slot."""
    slot = (run.endpoint_id, run.scheduled_for, run.attempt)
    existing = t.run_slots.get(slot)
    if existing is not None:
        if t.runs[existing].status not in (RunStatus.LOST, RunStatus.UNKNOWN):
            raise errors.Conflict(
                f"Run of endpoint {run.endpoint_id!r} for {run.scheduled_for.isoformat()} "
                f"attempt {run.attempt} is already recorded."
            )
        del t.runs[existing]
    if run.id in t.runs:
        raise errors.Conflict(f"A run with id {run.id!r} exists.")
    t.add_run(run)


def _record_swept(t: Tables, run: Run) -> bool:
    """Insert a sweeper's record unless its slot is recorded already; whether it was."""
    if (run.endpoint_id, run.scheduled_for, run.attempt) in t.run_slots:
        return False
    t.add_run(run)
    return True


def _swept_run(t: Tables, ep: Endpoint, now: datetime) -> Run:
    assert ep.lease is not None
    slot, claimed_at = t.claimed.get(ep.id, (None, None))
    started = t.started.get(ep.id)
    return Run(
        id=new_id("run", now),
        endpoint_id=ep.id,
        job_id=ep.job_id,
        tenant_id=ep.tenant_id,
        scheduled_for=slot or ep.next_run_at or now,
        started_at=started or claimed_at or now,
        finished_at=now,
        status=RunStatus.LOST if started is None else RunStatus.UNKNOWN,
        source=ep.next_run_source or PlanSource.BASELINE_INTERVAL,
        attempt=ep.attempt,
        error=lifecycle.swept_error(ep.lease.owner, started is not None, ep.delivery),
        worker_id=ep.lease.owner,
    )
