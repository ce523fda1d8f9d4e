"""The worker's background duties: lease heartbeats, the sweeper, worker liveness.

* Leases are renewed for tracked claims (waiting, queued or running) whose lease
  ends within ``renew_before``: a run queued behind a busy host, or a long run with
  retries, must not lose its slot to the sweeper of another worker.
* The sweeper frees leases that expired (a crashed worker) and the store records
  each lost attempt; every worker sweeps, the store makes that safe.
* The worker row's heartbeat shows the worker alive in ``list_workers``.

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
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._cadence = cadence
        self._tickets = tickets
        self._on_lost = on_lost
        self._on_swept = on_swept
        self.last_beat: float | None = None
        """Monotonic time of the last heartbeat the store took (readiness reads it)."""

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
            log.warning("worker.heartbeat_failed", error=_describe(exc))
            return
        self.last_beat = self._clock.monotonic()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
