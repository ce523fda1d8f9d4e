"""The worker's background duties: lease heartbeats, the sweeper, worker liveness.

* Leases are renewed for tracked claims (waiting, queued or running) whose lease
  ends within ``renew_before``: a run queued behind a busy host, or a long run with
  retries, must not lose its slot to the sweeper of another worker.
* The sweeper frees leases that expired (a crashed worker) and the store records
  each lost attempt; every worker sweeps, the store makes that safe.
* The worker row's heartbeat shows the worker alive in ``list_workers``.
* Every tick, the other workers' heartbeats are read: one silent for
  ``stale_after`` is dead, and its leases are freed at once rather than when they
  expire (a lease lasts the whole request budget: minutes or hours). A worker judges
  others only after its own heartbeats have gone through for ``stale_after``: after
  a database outage every heartbeat is old, and the first worker back must not take
  the others for dead. Dead workers' rows are removed after ``prune_after``. The
  number of live workers feeds the fair share of claims (``on_live``).

Every duty logs and carries on when the store fails: a database blip must not stop
the worker, and the next tick tries again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from cadenza.ports import Claim, Clock, Store
from cadenza.scheduler.tickets import Ticket

log = structlog.get_logger("cadenza.scheduler")


@dataclass(frozen=True, slots=True)
class Cadence:
    tick: float
    renew_before: float
    sweep_every: float
    heartbeat_every: float
    lease_margin: float
    stale_after: float
    prune_after: float


class Housekeeper:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        cadence: Cadence,
        *,
        tickets: Callable[[], Iterable[Ticket]],
        on_lost: Callable[[list[str]], None],
        on_swept: Callable[[int], None],
        on_live: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._cadence = cadence
        self._tickets = tickets
        self._on_lost = on_lost
        self._on_swept = on_swept
        self._on_live = on_live
        self._beating_since: float | None = None
        self._freed: set[str] = set()

    async def run(self) -> None:
        """Tick until cancelled."""
        cadence = self._cadence
        next_sweep = next_beat = self._clock.monotonic()
        while True:
            await self.renew_leases()
            mono = self._clock.monotonic()
            if mono >= next_sweep:
                next_sweep = mono + cadence.sweep_every
                await self.sweep()
            if mono >= next_beat:
                next_beat = mono + cadence.heartbeat_every
                await self.heartbeat()
            await self.watch_workers()
            await self._clock.sleep(cadence.tick)

    async def renew_leases(self) -> None:
        now = self._clock.now()
        horizon = now + timedelta(seconds=self._cadence.renew_before)
        by_budget: dict[timedelta, list[Ticket]] = defaultdict(list)
        for ticket in self._tickets():
            if ticket.lease_until <= horizon and not ticket.cancelled:
                by_budget[ticket.claim.endpoint.request.lease_budget].append(ticket)
        margin = timedelta(seconds=self._cadence.lease_margin)
        for budget, tickets in by_budget.items():
            until = now + budget + margin
            claims: list[Claim] = [t.claim for t in tickets]
            try:
                lost = await self._store.extend_leases(self._worker_id, claims, until)
            except Exception as exc:  # retried at the next tick
                log.warning("leases.renew_failed", claims=len(claims), error=_describe(exc))
                continue
            for ticket in tickets:
                ticket.lease_until = until
            log.debug("leases.renewed", claims=len(claims), lost=len(lost))
            if lost:
                self._on_lost(lost)

    async def sweep(self) -> None:
        try:
            runs = await self._store.sweep_expired(self._clock.now())
        except Exception as exc:  # retried at the next sweep
            log.warning("leases.sweep_failed", error=_describe(exc))
            return
        if runs:
            log.info("leases.swept", lost_runs=len(runs), sample=[r.endpoint_id for r in runs[:5]])
            self._on_swept(len(runs))

    async def heartbeat(self) -> None:
        try:
            await self._store.heartbeat_worker(self._worker_id, self._clock.now())
        except Exception as exc:  # retried at the next beat
            self._beating_since = None
            log.warning("worker.heartbeat_failed", error=_describe(exc))
            return
        if self._beating_since is None:
            self._beating_since = self._clock.monotonic()

    async def watch_workers(self) -> None:
        """Free the leases of workers whose heartbeat is stale; prune the long dead."""
        cadence = self._cadence
        since = self._beating_since
        if since is None or self._clock.monotonic() - since < cadence.stale_after:
            return
        now = self._clock.now()
        try:
            workers = await self._store.list_workers()
        except Exception as exc:  # looked at again at the next tick
            log.warning("workers.list_failed", error=_describe(exc))
            return
        silent = {
            w.id: (now - w.heartbeat_at).total_seconds() for w in workers if w.id != self._worker_id
        }
        dead = {w: age for w, age in silent.items() if age > cadence.stale_after}
        self._on_live(len(workers) - len(dead))
        self._freed &= dead.keys()
        await self._free(sorted(dead.keys() - self._freed))
        await self._prune([w for w, age in dead.items() if age > cadence.prune_after])

    async def _free(self, dead: list[str]) -> None:
        if not dead:
            return
        try:
            runs = await self._store.free_leases_of(dead, self._clock.now())
        except Exception as exc:  # tried again at the next tick
            log.warning("workers.free_failed", workers=dead, error=_describe(exc))
            return
        self._freed.update(dead)
        log.warning("workers.dead", workers=dead, freed=len(runs))
        if runs:
            self._on_swept(len(runs))

    async def _prune(self, gone: list[str]) -> None:
        for worker_id in gone:
            try:
                await self._store.remove_worker(worker_id)
            except Exception as exc:  # pruned at a later tick
                log.warning("workers.prune_failed", worker=worker_id, error=_describe(exc))
                return
            log.info("workers.pruned", worker=worker_id)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
