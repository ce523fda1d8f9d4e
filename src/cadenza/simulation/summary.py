"""The JSON summary of a comparison, and the text timeline the CLI prints.

Both are pure functions of the results, so the same seed gives byte-identical output:
floats are rounded, keys come in a fixed order, times are minutes from the start.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cadenza.simulation.result import Detection, Figures, Mode, RunRecord, SimulationResult


def _round(value: float) -> float:
    return round(value, 3)


def _minute(result: SimulationResult, at: datetime | None) -> float | None:
    return None if at is None else _round(result.minute(at))


def detection_json(result: SimulationResult, found: Detection) -> dict[str, Any]:
    delay = found.delay
    return {
        "incident": found.incident,
        "start_minute": _minute(result, found.started_at),
        "seen_minute": _minute(result, found.seen_at),
        "seen_by": found.seen_by,
        "delay_seconds": None if delay is None else _round(delay.total_seconds()),
    }


def figures_json(result: SimulationResult) -> dict[str, Any]:
    f: Figures = result.figures
    delay = f.detection_delay
    return {
        "detection_delay_seconds": None if delay is None else _round(delay.total_seconds()),
        "calls": f.calls,
        "recovery_actions": f.recovery_actions,
        "escalations": f.escalations,
        "cooldown_violations": f.cooldown_violations,
        "clamp_violations": f.clamp_violations,
        "retry_after_violations": f.retry_after_violations,
        "planner_changes": f.hints,
        "refused_proposals": f.refused_proposals,
        "detections": [detection_json(result, d) for d in f.detections],
        "runs_per_endpoint": dict(sorted(Counter(r.endpoint for r in result.runs).items())),
    }


def summary(results: Mapping[Mode, SimulationResult]) -> dict[str, Any]:
    """Figures of every mode side by side, plus the adaptive replay's changes."""
    adaptive = results[Mode.ADAPTIVE]
    scenario = adaptive.scenario
    calls = {mode.value: r.figures.calls for mode, r in results.items()}
    tight = calls.get(Mode.STATIC_TIGHT.value)
    return {
        "scenario": {
            "name": scenario.name,
            "title": scenario.title,
            "use_case": scenario.use_case,
            "start": scenario.start.isoformat(),
            "duration_minutes": scenario.duration_minutes,
            "endpoints": len(scenario.endpoints),
            "tiers": dict(Counter(e.tier for e in scenario.endpoints)),
        },
        "seed": adaptive.seed,
        "figures": {mode.value: figures_json(r) for mode, r in results.items()},
        "adaptive_calls_share_of_static_tight": (
            None if not tight else _round(calls[Mode.ADAPTIVE.value] / tight)
        ),
        "adaptive_changes": [
            {
                "minute": _minute(adaptive, c.at),
                "endpoint": c.endpoint,
                "action": c.action,
                "actor": c.actor,
                "reason": c.reason,
            }
            for c in adaptive.changes
        ],
    }


def summary_text(results: Mapping[Mode, SimulationResult]) -> str:
    return json.dumps(summary(results), indent=2, ensure_ascii=False) + "\n"


def _clock(result: SimulationResult, at: datetime) -> str:
    seconds = round((at - result.scenario.start).total_seconds())
    return f"+{seconds // 60:02d}:{seconds % 60:02d}"


def _run_line(result: SimulationResult, run: RunRecord) -> tuple[datetime, int, str]:
    outcome = "ok  " if run.ok else f"{run.http_status or 'err'} "
    reading = " ".join(f"{k}={v}" for k, v in sorted(run.body.items()))
    line = f"{_clock(result, run.started_at)}  run     {run.endpoint:<28} {outcome} [{run.source}] "
    return run.started_at, 1, line + reading


def timeline(result: SimulationResult) -> list[str]:
    """Every run and schedule change of ``result`` in time order, one line each."""
    lines = [_run_line(result, r) for r in result.runs]
    for c in result.changes:
        text = f"{_clock(result, c.at)}  {c.actor:<7} {c.endpoint:<28} {c.action}: {c.reason}"
        lines.append((c.at, 0, text))
    for incident in result.scenario.incidents:
        at = result.scenario.at(incident.start_minute)
        lines.append((at, 0, f"{_clock(result, at)}  ----- incident: {incident.name}"))
    # A change sorts before the run it caused at the same instant.
    lines.sort(key=lambda item: (item[0], item[1]))
    return [text for _, _, text in lines]


_ROWS = (
    ("detection delay (s)", "detection_delay_seconds"),
    ("calls", "calls"),
    ("recovery actions", "recovery_actions"),
    ("escalations", "escalations"),
    ("cooldown violations", "cooldown_violations"),
    ("clamp violations", "clamp_violations"),
    ("Retry-After violations", "retry_after_violations"),
    ("planner changes", "planner_changes"),
)


def figures_table(results: Mapping[Mode, SimulationResult]) -> list[str]:
    """The figures of each mode as an aligned text table."""
    cols = {mode.value: figures_json(r) for mode, r in results.items()}
    header = f"{'':<24}" + "".join(f"{name:>14}" for name in cols)
    rows = [header]
    for label, key in _ROWS:
        cells = "".join(f"{_cell(values[key]):>14}" for values in cols.values())
        rows.append(f"{label:<24}{cells}")
    return rows


def _cell(value: Any) -> str:
    return "not seen" if value is None else f"{value:g}"
