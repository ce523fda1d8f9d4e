"""Batched completion: finished runs reach the store in one transaction per flush.

A run that finishes while the completer is idle is flushed at once; under load,
flushes follow each other every ``interval`` (50 ms by default), so a finished run
waits at most about one interval plus one flush.

A failed flush is retried with backoff (capped at ``_MAX_BACKOFF``). While the
database does not answer (a probe write fails too: the worker's heartbeat), the
completions are kept, however long that takes, and written when it comes back: a
run that happened is never dropped or sent again because the database was away.
The scheduler keeps renewing their leases meanwhile, and the flushes in flight
(``max_inflight``) hold the oldest runs, so they are written first; what finishes
meanwhile waits behind them, bounded by the claims a worker may hold.

A batch that fails while the database answers (a ``Conflict``: a row is already
recorded, say as lost by a sweeper; or a bad row) is written one completion at a
time, so one bad row cannot hold back the others; a completion that still fails
on its own is dropped with an error log. Once closed, the completer keeps trying
until its deadline, then drops what is left (the process is going away; the
sweeper records those attempts).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum

import structlog

from cadenza.domain import errors
from cadenza.ports import Clock, Completed, Completion, Store

log = structlog.get_logger("cadenza.scheduler")

_RETRIES = 3
_RETRY_BACKOFF = 0.2
_MAX_BACKOFF = 2.0


class _Failure(Enum):
    CONFLICT = "conflict"
    """A run row is already recorded (say, as lost by a sweeper): the batch can never
    commit as it is."""
    OTHER = "other"


class _Verdict(Enum):
    ISOLATE = "isolate"
    """The batch itself cannot be written: try its completions one by one."""
    GIVE_UP = "give_up"
    """Closed and past the deadline: drop it."""


class Completer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        *,
        interval: float,
        max_batch: int,
        on_flushed: Callable[[Sequence[Completion], Completed], None],
        max_inflight: int = 4,
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._interval = interval
        self._max_batch = max_batch
        self._on_flushed = on_flushed
        self._pending: list[Completion] = []
        self._arrived = asyncio.Event()
        self._last_flush = float("-inf")
        self._closing = False
        self._deadline = math.inf
        self._slots = asyncio.Semaphore(max_inflight)
        self._inflight: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """Completions waiting plus flushes in flight: zero once all is written."""
        return len(self._pending) + len(self._inflight)

    def add(self, completion: Completion) -> None:
        self._pending.append(completion)
        self._arrived.set()

    def close(self, within: float = math.inf) -> None:
        """Ask ``run`` to return once everything pending is written; writes that
        still fail ``within`` seconds from now are given up.

        The loop is never cancelled mid-flush: a batch taken off the queue would be lost.
        """
        self._closing = True
        self._deadline = self._clock.monotonic() + within
        self._arrived.set()

    async def run(self) -> None:
        """Flush whatever arrives, a batch per ``interval`` (sooner when a full batch
        waits), with up to ``max_inflight`` flushes in flight, until closed.

        Flushes overlap because a database round trip, not CPU, bounds each one: a
        slow flush must not hold back the next, or every endpoint's next slot slips.
        Overlapping flushes never touch the same ``skip`` endpoint: a run's endpoint
        stays leased, so it cannot run again, until its completion is written. Runs
        of an ``overlap=allow`` endpoint may land in two flushes at once; each
        flush reads and locks the endpoint's current row (``flights``).
        """
        while True:
            if not self._pending:
                if self._closing:
                    break
                self._arrived.clear()
                await self._arrived.wait()
                continue
            wait = self._last_flush + self._interval - self._clock.monotonic()
            if wait > 0 and len(self._pending) < self._max_batch:
                await self._clock.sleep(wait)
            await self._slots.acquire()
            self._last_flush = self._clock.monotonic()
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            task = asyncio.create_task(self._flush_batch(batch))
            self._inflight.add(task)
            task.add_done_callback(self._flushed)
        if self._inflight:
            await asyncio.gather(*self._inflight)

    async def _flush_batch(self, batch: Sequence[Completion]) -> None:
        self._on_flushed(batch, await self._write(batch))

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def flush(self) -> None:
        """Write everything pending now, one batch after another."""
        self._last_flush = self._clock.monotonic()
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._on_flushed(batch, await self._write(batch))

    async def _write(self, batch: Sequence[Completion]) -> Completed:
        """Complete ``batch``: what the store did, over the completions not dropped."""
        done = await self._retrying(batch)
        if isinstance(done, Completed):
            return done
        if done is _Verdict.GIVE_UP or len(batch) == 1:
            return self._drop(batch)
        lost: list[str] = []
        slots: list[datetime] = []
        for completion in batch:
            one = await self._write((completion,))
            lost += one.lost
            if one.earliest_next_run is not None:
                slots.append(one.earliest_next_run)
        return Completed(lost, min(slots, default=None))

    async def _retrying(self, batch: Sequence[Completion]) -> Completed | _Verdict:
        """Write ``batch``, retrying for as long as the database is away."""
        attempt = 0
        while True:
            done = await self._complete(batch, attempt)
            if isinstance(done, Completed):
                return done
            if done is _Failure.CONFLICT:
                return _Verdict.ISOLATE  # retrying the same rows cannot help
            attempt += 1
            if self._clock.monotonic() >= self._deadline:
                return _Verdict.GIVE_UP
            if attempt >= _RETRIES and await self._database_answers():
                return _Verdict.ISOLATE
            await self._clock.sleep(min(_RETRY_BACKOFF * 2 ** (attempt - 1), _MAX_BACKOFF))

    async def _database_answers(self) -> bool:
        """Whether a small write succeeds: if so, the batch fails for a reason of its
        own; if not, the database is away and the batch must wait for it."""
        try:
            await self._store.heartbeat_worker(self._worker_id, self._clock.now())
        except Exception:  # the database is away: the caller keeps the batch
            return False
        return True

    async def _complete(self, batch: Sequence[Completion], attempt: int) -> Completed | _Failure:
        try:
            done = await self._store.complete(self._worker_id, batch, self._clock.now())
        except Exception as exc:  # any store failure: the caller retries, then isolates
            log.warning(
                "completions.flush_failed",
                runs=len(batch),
                attempt=attempt + 1,
                error=f"{type(exc).__name__}: {exc}",
            )
            return _Failure.CONFLICT if isinstance(exc, errors.Conflict) else _Failure.OTHER
        lost = done.lost
        log.debug("completions.flushed", runs=len(batch), fenced=len(lost))
        if lost:
            log.info("completions.fenced", endpoints=len(lost), sample=lost[:5])
        return done

    @staticmethod
    def _drop(batch: Sequence[Completion]) -> Completed:
        log.error(
            "completions.dropped",
            runs=len(batch),
            endpoint_ids=[c.claim.endpoint.id for c in batch[:5]],
            run_ids=[c.run.id for c in batch[:5]],
        )
        return Completed([])
