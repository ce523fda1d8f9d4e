"""The simulated world and the targets that report on it (a ``Dispatcher``).

Every number a target reports comes from the scenario's signals at the run's start,
scaled by the effects of recovery runs so far, with noise drawn from a
``random.Random`` seeded by the run's seed, the endpoint and the instant. Seeding per
draw (not one shared stream) means the adaptive and the static replay of a scenario
see the same world at the same instants, whatever else they did in between.
"""

from __future__ import annotations

import bisect
import json
import operator
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from cadenza.domain.model import Endpoint, ResponseCapture, RunStatus
from cadenza.ports import Clock, DispatchResult
from cadenza.simulation.scenario import EndpointSpec, FailWhen, Scenario, SignalSpec

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "eq": operator.eq,
}


def compare(op: str, left: float, right: float) -> bool:
    return _COMPARE[op](left, right)


def base_value(signal: SignalSpec, minute: float) -> float:
    """The scripted value at ``minute``: held from the last point, or interpolated."""
    times = [p[0] for p in signal.points]
    index = bisect.bisect_right(times, minute) - 1
    if index < 0:
        return signal.points[0][1]
    t0, v0 = signal.points[index]
    if signal.shape == "step" or index + 1 >= len(signal.points):
        return v0
    t1, v1 = signal.points[index + 1]
    return v0 + (v1 - v0) * (minute - t0) / (t1 - t0)


class World:
    """Signals over time plus the effects recovery runs have set in motion."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self._scenario = scenario
        self._seed = seed
        self._effect_from: dict[int, datetime] = {}

    def ran(self, endpoint: str, at: datetime) -> None:
        """``endpoint`` ran at ``at``: start its effects (its first run counts)."""
        for index, effect in enumerate(self._scenario.effects):
            if effect.endpoint == endpoint and index not in self._effect_from:
                self._effect_from[index] = at + timedelta(seconds=effect.delay_seconds)

    def value(self, name: str, at: datetime) -> float:
        """The signal without noise: what the world is, not what a probe reads."""
        minute = (at - self._scenario.start).total_seconds() / 60
        value = base_value(self._scenario.signals[name], minute)
        for index, effect in enumerate(self._scenario.effects):
            began = self._effect_from.get(index)
            if began is not None and at >= began and name in effect.multiply:
                value *= effect.multiply[name]
        return value

    def rng(self, endpoint: str, at: datetime) -> random.Random:
        return random.Random(f"{self._seed}|{endpoint}|{at.isoformat()}")

    def sample(self, name: str, at: datetime, rng: random.Random) -> float:
        spec = self._scenario.signals[name]
        value = self.value(name, at)
        if spec.noise:
            value *= 1 + rng.uniform(-spec.noise, spec.noise)
        return round(value, spec.decimals) if spec.decimals else float(round(value))


def _failure(spec: EndpointSpec, readings: dict[str, float]) -> FailWhen | None:
    return next((f for f in spec.fails_when if compare(f.op, readings[f.signal], f.value)), None)


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


class SimulatedTargets:
    """A ``Dispatcher`` whose responses follow the scenario script; no network at all.

    A request takes ``latency_ms`` (or the value of ``latency_signal`` in ms), with
    ±10 % noise, slept on the clock: on a virtual clock runs overlap as real ones do
    and hold their concurrency slots until they finish. ``calls`` counts requests.
    """

    def __init__(self, scenario: Scenario, world: World, clock: Clock) -> None:
        self._specs = {e.name: e for e in scenario.endpoints}
        self._world = world
        self._clock = clock
        self.calls = 0

    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        spec = self._specs[endpoint.name]
        now = self._clock.now()
        rng = self._world.rng(spec.name, now)
        needed = dict.fromkeys([*spec.reports, *(f.signal for f in spec.fails_when)])
        if spec.latency_signal is not None:
            needed[spec.latency_signal] = None
        readings = {name: self._world.sample(name, now, rng) for name in needed}
        self._world.ran(spec.name, now)
        self.calls += 1
        failed = _failure(spec, readings)
        base_ms = readings[spec.latency_signal] if spec.latency_signal else spec.latency_ms
        latency = timedelta(milliseconds=max(1.0, base_ms * rng.uniform(0.9, 1.1)))
        body: dict[str, object] = {name: _number(readings[name]) for name in spec.reports}
        if failed is not None and failed.retry_after_seconds is not None:
            body = {"error": failed.error or "rate limited"}  # a refusal reports nothing
        body = body or {"ok": failed is None}
        raw = json.dumps(body, sort_keys=True).encode()
        await self._clock.sleep(latency.total_seconds())
        headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
        if failed is not None and failed.retry_after_seconds is not None:
            headers += (("retry-after", str(failed.retry_after_seconds)),)
        return DispatchResult(
            status=RunStatus.SUCCESS if failed is None else RunStatus.FAILURE,
            started_at=now,
            finished_at=now + latency,
            http_status=200 if failed is None else failed.status,
            error="" if failed is None else (failed.error or f"HTTP {failed.status}"),
            response=ResponseCapture(raw, "application/json", len(raw), False, headers),
        )

    async def close(self) -> None:
        return None
