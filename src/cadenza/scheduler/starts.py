"""``StartMarks``: every attempt's start recorded before its request leaves, batched.

A dead worker's lease whose start was recorded ran an attempt with its outcome
unknown (``unknown``: sent again with the same ``Idempotency-Key`` for
``at_least_once``, never for ``at_most_once``); one without it never sent its
request (``lost``, and it runs again). The mark is one fenced statement, a single
round trip (``Store.mark_started``); runs starting together share it: a mark asked
for while a write is under way joins the next write, so a burst of N starts costs
about two round trips, not N, and a lone start costs one.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from cadenza.ports import Claim, Clock, Store

log = structlog.get_logger("cadenza.scheduler")


class StartMarks:
    def __init__(self, store: Store, clock: Clock, worker_id: str) -> None:
        self._store = store
        self._clock = clock
        self._id = worker_id
        self._waiting: list[tuple[Claim, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def may_send(self, claim: Claim) -> bool:
        """True once ``claim``'s start is recorded. False when its lease is no longer
        ours, or the mark could not be written (the slot is then released, or else
        swept as ``lost``): its request must not go."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((claim, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        try:
            await asyncio.sleep(0)  # the starts launched in this loop turn join the first write
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[tuple[Claim, asyncio.Future[bool]]]) -> None:
        claims = [claim for claim, _ in batch]
        try:
            lost = set(await self._store.mark_started(self._id, claims, self._clock.now()))
        except Exception as exc:
            log.warning("run.start_unrecorded", runs=len(claims), error=str(exc))
            with contextlib.suppress(Exception):
                await self._store.release(self._id, claims)
            lost = {claim.endpoint.id for claim in claims}
        for claim, future in batch:
            if not future.done():  # its run may have been cancelled meanwhile
                future.set_result(claim.endpoint.id not in lost)
