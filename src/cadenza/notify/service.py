"""The alert loop as a ``run()``/``stop()`` service: one evaluator tick every
``interval`` seconds until stopped. A tick that fails is logged and the next one
tries again; nothing it wrote is lost (each store write is atomic)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from cadenza.notify.incidents import AlertEvaluator
from cadenza.ports import Clock

log = structlog.get_logger("cadenza.alerts")


class AlertService:
    def __init__(self, evaluator: AlertEvaluator, clock: Clock, interval: float) -> None:
        self._evaluator = evaluator
        self._clock = clock
        self._interval = interval
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._evaluator.tick(self._clock.now())
            except Exception:  # one bad tick must not end alerting for good
                log.exception("alert_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def stop(self) -> None:
        self._stop.set()
