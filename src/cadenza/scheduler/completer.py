"""Batched completion: finished runs reach the store in one transaction per flush.

A run that finishes while the completer is idle is flushed at once; under load,
flushes follow each other every ``interval`` (50 ms by default), so a finished run
waits at most about one interval plus one flush. A failed flush is retried with
backoff (a ``Conflict`` is not retried); a batch that keeps failing is then written
one completion at a time, so one bad row cannot hold back the others, and a
completion that still fails is dropped with an error log (its lease then expires
and the sweeper records the attempt as lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum

import structlog

from cadenza.domain import errors
from cadenza.ports import Clock, Completed, Completion, Store

log = structlog.get_logger("cadenza.scheduler")

_RETRIES = 3
_RETRY_BACKOFF = 0.2


class _Failure(Enum):
    CONFLICT = "conflict"
    """A run row is already recorded (say, as lost by a sweeper): the batch can never
    commit as it is."""
    OTHER = "other"


class Completer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        *,
        interval: float,
        max_batch: int,
        on_flushed: Callable[[int, Completed], None],
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
        self._slots = asyncio.Semaphore(max_inflight)
        self._inflight: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """Completions waiting plus flushes in flight: zero once all is written."""
        return len(self._pending) + len(self._inflight)

    def add(self, completion: Completion) -> None:
        self._pending.append(completion)
        self._arrived.set()

    def close(self) -> None:
        """Ask ``run`` to return once everything pending is written.

        The loop is never cancelled mid-flush: a batch taken off the queue would be lost.
        """
        self._closing = True
        self._arrived.set()

    async def run(self) -> None:
        """Flush whatever arrives, a batch per ``interval`` (sooner when a full batch
        waits), with up to ``max_inflight`` flushes in flight, until closed.

        Flushes overlap because a database round trip, not CPU, bounds each one: a
        slow flush must not hold back the next, or every endpoint's next slot slips.
        Overlapping flushes never touch the same endpoint: a run's endpoint stays
        leased, so it cannot run again, until its completion is written.
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
        self._on_flushed(len(batch), await self._write(batch))

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def flush(self) -> None:
        """Write everything pending now, one batch after another."""
        self._last_flush = self._clock.monotonic()
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._on_flushed(len(batch), await self._write(batch))

    async def _write(self, batch: Sequence[Completion]) -> Completed:
        """Complete ``batch``: what the store did, over the completions not dropped."""
        for attempt in range(_RETRIES):
            done = await self._complete(batch, attempt)
            if isinstance(done, Completed):
                return done
            if done is _Failure.CONFLICT:
                break  # retrying the same rows cannot help: isolate the clash at once
            await self._clock.sleep(_RETRY_BACKOFF * 2**attempt)
        if len(batch) == 1:
            return self._drop(batch[0])
        lost: list[str] = []
        slots: list[datetime] = []
        for completion in batch:
            done = await self._complete((completion,), _RETRIES)
            if not isinstance(done, Completed):
                done = self._drop(completion)
            lost += done.lost
            if done.earliest_next_run is not None:
                slots.append(done.earliest_next_run)
        return Completed(lost, min(slots, default=None))

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
    def _drop(completion: Completion) -> Completed:
        log.error(
            "completions.dropped",
            endpoint_id=completion.claim.endpoint.id,
            run_id=completion.run.id,
        )
        return Completed([])
