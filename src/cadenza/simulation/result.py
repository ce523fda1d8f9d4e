"""What a simulation produced: its runs, the schedule changes, and the figures.

The figures compare an adaptive replay with static ones:

* **detection delay** per incident: from its start to the first run of one of its
  observers that saw it (failed, or reported the field past the threshold);
* **calls**: requests made to the targets;
* **recovery actions** and **escalations**: runs of ``recovery``- and
  ``alert``-tier endpoints;
* **cooldown violations**: two runs of a recovery or alert endpoint closer than its
  ``min_interval`` (its cooldown);
* **clamp violations**: two runs of any endpoint closer than its ``min_interval``, or
  further apart than its ``max_interval`` while it was not paused;
* **Retry-After violations**: requests sent before the wait a target asked for was over.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cadenza.simulation.scenario import IncidentSpec, Scenario
from cadenza.simulation.world import compare

RECOVERY_TIERS = frozenset({"recovery"})
ALERT_TIERS = frozenset({"alert"})
_SLACK = timedelta(milliseconds=1)
"""Virtual time has no jitter; this only absorbs float rounding of guardrails."""


class Mode(StrEnum):
    ADAPTIVE = "adaptive"
    """The rules planner acts through the catalogue."""
    STATIC = "static"
    """The same setup on its baselines; nobody steers."""
    STATIC_TIGHT = "static-tight"
    """Every endpoint, awake, at its tight cadence all the time."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    endpoint: str
    tier: str
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime
    ok: bool
    http_status: int | None
    source: str
    body: dict[str, Any]
    retry_after: timedelta | None = None
    """The wait the target asked for (``Retry-After``), if it did."""


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One schedule change from the audit log: who changed which endpoint, and why."""

    at: datetime
    endpoint: str
    action: str
    actor: str
    reason: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Detection:
    incident: str
    started_at: datetime
    seen_at: datetime | None
    seen_by: str | None

    @property
    def delay(self) -> timedelta | None:
        return None if self.seen_at is None else self.seen_at - self.started_at


@dataclass(frozen=True, slots=True)
class Figures:
    calls: int
    detections: tuple[Detection, ...]
    recovery_actions: int
    escalations: int
    cooldown_violations: int
    clamp_violations: int
    retry_after_violations: int
    hints: int
    refused_proposals: int

    @property
    def detection_delay(self) -> timedelta | None:
        """The first incident's delay: the one each scenario's story is about."""
        return self.detections[0].delay if self.detections else None


@dataclass(frozen=True, slots=True)
class SimulationResult:
    scenario: Scenario
    mode: Mode
    seed: int
    runs: tuple[RunRecord, ...]
    changes: tuple[ChangeRecord, ...]
    figures: Figures

    def runs_of(self, endpoint: str) -> list[RunRecord]:
        return [r for r in self.runs if r.endpoint == endpoint]

    def changes_to(self, endpoint: str, action: str | None = None) -> list[ChangeRecord]:
        return [c for c in self.changes if c.endpoint == endpoint and action in (None, c.action)]

    def minute(self, at: datetime) -> float:
        return (at - self.scenario.start).total_seconds() / 60


def detect(incident: IncidentSpec, scenario: Scenario, runs: Iterable[RunRecord]) -> Detection:
    start = scenario.at(incident.start_minute)
    for run in runs:
        if run.started_at < start or run.endpoint not in incident.observed_by:
            continue
        if _observes(incident, run):
            return Detection(incident.name, start, run.started_at, run.endpoint)
    return Detection(incident.name, start, None, None)


def _observes(incident: IncidentSpec, run: RunRecord) -> bool:
    if incident.failure and not run.ok:
        return True
    value = run.body.get(incident.field or "")
    return isinstance(value, int | float) and compare(incident.op, value, incident.value)


def pause_windows(changes: Iterable[ChangeRecord]) -> dict[str, list[tuple[datetime, datetime]]]:
    """Each endpoint's paused stretches, from its pause and resume events."""
    windows: dict[str, list[tuple[datetime, datetime]]] = {}
    for change in changes:
        spans = windows.setdefault(change.endpoint, [])
        if change.action == "pause_endpoint":
            until = datetime.fromisoformat(str(change.details["until"]))
            spans.append((change.at, until))
        elif change.action == "resume_endpoint" and spans and spans[-1][1] > change.at:
            spans[-1] = (spans[-1][0], change.at)
    return windows


def violations(
    scenario: Scenario, runs: list[RunRecord], changes: list[ChangeRecord]
) -> tuple[int, int]:
    """``(cooldown, clamp)`` violations; see the module docstring."""
    paused = pause_windows(changes)
    cooldown = clamp = 0
    for spec in scenario.endpoints:
        low = _seconds(spec.min_interval_seconds)
        high = _seconds(spec.max_interval_seconds)
        starts = [r.started_at for r in runs if r.endpoint == spec.name]
        for before, after in itertools.pairwise(starts):
            gap = after - before
            too_soon = low is not None and gap < low - _SLACK
            spans = paused.get(spec.name, [])
            too_late = (
                high is not None and gap > high + _SLACK and not _overlaps(spans, before, after)
            )
            clamp += too_soon or too_late
            cooldown += too_soon and spec.tier in RECOVERY_TIERS | ALERT_TIERS
    return cooldown, clamp


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _overlaps(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    return any(s < end and e > start for s, e in spans)


def impatient(runs: Iterable[RunRecord]) -> int:
    """Requests sent to an endpoint before the ``Retry-After`` it last returned expired."""
    wait_until: dict[str, datetime] = {}
    count = 0
    for run in runs:
        until = wait_until.get(run.endpoint)
        count += until is not None and run.started_at < until
        if run.retry_after is not None:
            wait_until[run.endpoint] = run.finished_at + run.retry_after
    return count


def figures(
    scenario: Scenario, runs: list[RunRecord], changes: list[ChangeRecord], refused: int
) -> Figures:
    cooldown, clamp = violations(scenario, runs, changes)
    return Figures(
        calls=len(runs),
        detections=tuple(detect(i, scenario, runs) for i in scenario.incidents),
        recovery_actions=sum(r.tier in RECOVERY_TIERS for r in runs),
        escalations=sum(r.tier in ALERT_TIERS for r in runs),
        cooldown_violations=cooldown,
        clamp_violations=clamp,
        retry_after_violations=impatient(runs),
        hints=sum(c.actor == "planner" for c in changes),
        refused_proposals=refused,
    )
