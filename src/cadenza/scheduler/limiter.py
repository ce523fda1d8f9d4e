"""Bounded concurrency: a global cap and a cap per target host.

A run takes its host's slot first and the global slot second, so a run queued
behind one slow host never holds a global slot that runs to other hosts could use.
Host entries exist only while in use, so many distinct hosts cost no memory at rest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class _HostSlots:
    used: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class Limiter:
    def __init__(self, total: int, per_host: int) -> None:
        if total < 1 or per_host < 1:
            raise ValueError("Concurrency limits must be at least 1.")
        self._global = asyncio.Semaphore(total)
        self._per_host = per_host
        self._hosts: dict[str, _HostSlots] = {}

    async def acquire(self, host: str) -> None:
        """Wait for a slot of ``host`` and a global slot; cancellation-safe."""
        await self._acquire_host(host)
        try:
            await self._global.acquire()
        except BaseException:
            self._release_host(host)
            raise

    def release(self, host: str) -> None:
        self._global.release()
        self._release_host(host)

    def in_use(self, host: str) -> int:
        slots = self._hosts.get(host)
        return 0 if slots is None else slots.used

    async def _acquire_host(self, host: str) -> None:
        slots = self._hosts.get(host)
        if slots is None:
            slots = self._hosts[host] = _HostSlots()
        if slots.used < self._per_host and not slots.waiters:
            slots.used += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slots.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self._release_host(host)
            else:
                slots.waiters.remove(waiter)
            raise

    def _release_host(self, host: str) -> None:
        slots = self._hosts[host]
        while slots.waiters:
            waiter = slots.waiters.popleft()
            if not waiter.done():
                # Hand the slot straight to the next waiter: ``used`` stays the same.
                waiter.set_result(None)
                return
        slots.used -= 1
        if slots.used == 0:
            del self._hosts[host]
