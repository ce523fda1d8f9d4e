"""A clock that moves only when told to, for deterministic tests and simulations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class FrozenClock:
    """``now()`` stays put until ``advance``; ``sleep`` advances virtual time at once.

    Sleeping yields to the event loop once, so other tasks still get to run, but no
    real time passes: a test that sleeps for an hour finishes immediately.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, by: timedelta | float) -> datetime:
        delta = by if isinstance(by, timedelta) else timedelta(seconds=by)
        self._now += delta
        self._mono += delta.total_seconds()
        return self._now

    def set(self, to: datetime) -> None:
        self.advance(to - self._now)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
        await asyncio.sleep(0)
