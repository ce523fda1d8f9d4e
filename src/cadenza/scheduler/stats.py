"""The worker's counters: read by tests and benchmarks, logged every
``stats_interval`` and at shutdown (one line, never one per run)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Stats:
    """Totals since the worker started; ``max_lateness`` (seconds) is the worst
    ``started_at − scheduled_for`` since the last stats line."""

    claimed: int = 0
    started: int = 0
    completed: int = 0
    fenced: int = 0
    released: int = 0
    swept: int = 0
    max_lateness: float = 0.0

    def fields(self) -> dict[str, float | int]:
        """The counters as log fields."""
        return {
            "claimed": self.claimed,
            "started": self.started,
            "completed": self.completed,
            "fenced": self.fenced,
            "released": self.released,
            "swept": self.swept,
            "max_lateness_ms": round(self.max_lateness * 1000, 3),
        }
