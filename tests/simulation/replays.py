"""Replays shared by the simulation tests, each computed once per session."""

from __future__ import annotations

from functools import cache

from cadenza.simulation import Mode, SimulationResult, load_scenario, simulate
from cadenza.simulation.result import RunRecord

SEED = 7
SEEDS = (1, 7, 42)


@cache
def replay(name: str, mode: Mode = Mode.ADAPTIVE, seed: int = SEED) -> SimulationResult:
    return simulate(load_scenario(name), mode, seed)


def starts(runs: list[RunRecord]) -> list[float]:
    return [r.started_at.timestamp() for r in runs]
