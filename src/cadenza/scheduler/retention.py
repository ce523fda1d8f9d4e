"""The retention housekeeper: apply every tenant's policy, in bounded batches.

``Pruner.run`` makes a pass every ``interval`` seconds until ``stop()``. A pass reads
the policies by keyset pages and, for each tenant, deletes runs older than its
``run_days``, runs beyond the newest ``runs_per_endpoint`` of each endpoint, and audit
events older than its ``audit_days``. Every delete is one batch of at most ``batch``
rows in a short transaction of its own, followed by a ``pause`` so that the
scheduler's claims and completions always get the database between batches (on
SQLite they share one write lock); a pass therefore never holds a lock for long,
however much there is to delete, and stops between batches when asked to.

Figures: each batch counts in ``cadenza_retention_pruned_total{kind}``; a tenant's
pass that deleted anything logs one ``retention.pruned`` line at info, one that
deleted nothing logs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import structlog

from cadenza.domain.retention import RetentionPolicy
from cadenza.ports import Clock, Observer, RetentionStore
from cadenza.scheduler.waker import wait_or_sleep

log = structlog.get_logger("cadenza.retention")

_PAGE = 200


@dataclass(frozen=True, slots=True)
class PrunerOptions:
    interval: float = 600.0
    """Seconds between passes."""
    batch: int = 1000
    """Rows deleted per transaction."""
    pause: float = 0.05
    """Seconds between batches: room for the scheduler's own writes."""
    max_batches: int = 10_000
    """Batches of one kind for one tenant (or endpoint) per pass; the rest waits."""


@dataclass(slots=True)
class Pruned:
    runs: int = 0
    audit_events: int = 0


class Pruner:
    """See the module docstring. ``run()`` until ``stop()``; ``prune_all`` is one pass."""

    def __init__(
        self,
        store: RetentionStore,
        clock: Clock,
        observer: Observer,
        options: PrunerOptions | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._observer = observer
        self._opts = options or PrunerOptions()
        self._stop = asyncio.Event()
        self.resumed = asyncio.Event()
        """Set while batches may run; a bench clears it to pause pruning."""
        self.resumed.set()

    def stop(self) -> None:
        self._stop.set()
        self.resumed.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.prune_all()
            except Exception as exc:  # the database may come back: try at the next pass
                log.warning("retention.failed", error=f"{type(exc).__name__}: {exc}")
            await wait_or_sleep(self._stop, self._clock, self._opts.interval)

    async def prune_all(self) -> Pruned:
        """One pass over every policy; the rows it deleted."""
        total = Pruned()
        after: str | None = None
        while not self._stop.is_set():
            policies = await self._store.list_policies(after=after, limit=_PAGE)
            for policy in policies:
                done = await self.prune_tenant(policy)
                total.runs += done.runs
                total.audit_events += done.audit_events
            if len(policies) < _PAGE:
                break
            after = policies[-1].tenant_id
        return total

    async def prune_tenant(self, policy: RetentionPolicy) -> Pruned:
        now = self._clock.now()
        tenant, limit = policy.tenant_id, self._opts.batch
        done = Pruned()
        if (runs_before := policy.runs_before(now)) is not None:
            prune = partial(self._store.prune_runs_before, tenant, runs_before, limit=limit)
            done.runs += await self._repeat("runs", prune)
        if policy.runs_per_endpoint is not None:
            done.runs += await self._prune_per_endpoint(tenant, policy.runs_per_endpoint)
        if (audit_before := policy.audit_before(now)) is not None:
            prune = partial(self._store.prune_audit_before, tenant, audit_before, limit=limit)
            done.audit_events += await self._repeat("audit_events", prune)
        if done.runs or done.audit_events:
            log.info(
                "retention.pruned", tenant_id=tenant, runs=done.runs, audit_events=done.audit_events
            )
        return done

    async def _prune_per_endpoint(self, tenant: str, keep: int) -> int:
        deleted, after = 0, None
        limit = self._opts.batch
        while not self._stop.is_set():
            ids = await self._store.endpoint_ids(tenant, after=after, limit=_PAGE)
            for endpoint_id in ids:
                prune = partial(self._store.prune_runs_beyond, endpoint_id, keep, limit=limit)
                deleted += await self._repeat("runs", prune)
            if len(ids) < _PAGE:
                break
            after = ids[-1]
        return deleted

    async def _repeat(self, kind: str, batch: Callable[[], Awaitable[int]]) -> int:
        """Run ``batch`` until it deletes less than a full batch (or the pruner stops)."""
        deleted = 0
        for _ in range(self._opts.max_batches):
            if self._stop.is_set():
                break
            await self.resumed.wait()
            count = await batch()
            deleted += count
            self._observer.pruned(kind, count)
            if count < self._opts.batch:
                break
            await self._clock.sleep(self._opts.pause)
        return deleted
