"""Starting claimed runs on time: one heap and one nap.

Claims arrive up to the look-ahead early. Rather than one sleeping task per claim,
the starter keeps them in a heap ordered by ``scheduled_for`` and sleeps once, until
the earliest is due. Event-loop timers have millisecond granularity (uvloop may fire
up to a millisecond early): a nap that ends before the slot naps again for the rest.
A run is launched only once ``clock.now() >= scheduled_for``, so it is never early by
construction.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from cadenza.ports import Clock


class Timed(Protocol):
    @property
    def due(self) -> float:
        """POSIX seconds at which to start."""
        ...

    @property
    def cancelled(self) -> bool: ...


T = TypeVar("T", bound=Timed)


class Starter(Generic[T]):
    """Calls ``launch(item)`` for each added item once the clock reaches ``item.due``."""

    def __init__(self, clock: Clock, launch: Callable[[T], None]) -> None:
        self._clock = clock
        self._launch = launch
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._nap: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, items: Iterable[T]) -> None:
        head = self._heap[0][0] if self._heap else None
        for item in items:
            heapq.heappush(self._heap, (item.due, next(self._seq), item))
        nap = self._nap
        if nap is not None and self._heap and (head is None or self._heap[0][0] < head):
            # An earlier slot arrived: cut the current nap short.
            nap.cancel()

    def drain(self) -> list[T]:
        """Remove and return every item not launched yet."""
        items = [entry[2] for entry in self._heap]
        self._heap.clear()
        return items

    async def run(self) -> None:
        """Launch items as they fall due, until cancelled."""
        while True:
            if not self._heap:
                await self._rest(None)
                continue
            delay = self._heap[0][0] - self._clock.now().timestamp()
            if delay > 0:
                await self._rest(delay)
            else:
                self._launch_due()

    def _launch_due(self) -> None:
        now = self._clock.now().timestamp()
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)[2]
            if not item.cancelled:
                self._launch(item)

    async def _rest(self, seconds: float | None) -> None:
        """Sleep on the clock (or until ``add``), interruptible by an earlier item."""
        if seconds is None:
            nap: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        else:
            nap = asyncio.ensure_future(self._clock.sleep(seconds))
        self._nap = nap
        try:
            await asyncio.wait((nap,))
        finally:
            self._nap = None
            nap.cancel()
