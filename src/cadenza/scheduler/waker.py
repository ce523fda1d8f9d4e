"""The in-process ``Waker``: actions call ``wake()``, the claim loop waits on it.

``wake()`` may be called from any thread (a sync handler run in a thread pool, a
notification listener): off the loop's thread it hops over with
``call_soon_threadsafe``, because ``asyncio.Event`` is not thread-safe.
"""

from __future__ import annotations

import asyncio

from cadenza.ports import Clock


class EventWaker:
    """Implements ``cadenza.ports.Waker``; wake-ups coalesce until the next ``wait``."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        loop = self._loop
        if loop is None:
            self._event.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._event.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._event.set)

    @property
    def woken(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, clock: Clock, seconds: float) -> bool:
        """Wait until woken or ``seconds`` pass on ``clock``; True when woken.

        Does not clear the wake-up: the caller clears it just before it reads the
        state the wake-up is about, so a wake-up during that read is not lost.
        """
        self._loop = asyncio.get_running_loop()
        if self._event.is_set():
            return True
        if seconds <= 0:
            return False
        return await wait_or_sleep(self._event, clock, seconds)


async def wait_or_sleep(event: asyncio.Event, clock: Clock, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds`` of ``clock`` time; True if set.

    The sleep goes through the injected clock so a frozen clock drives it in tests.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    nap = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((waiter, nap), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Not awaited: suppressing their CancelledError could swallow our own.
        waiter.cancel()
        nap.cancel()
    return event.is_set()
