"""A self-contained HTML report: inline CSS and SVG, no script, nothing fetched.

Sections: the figures of each mode; a swimlane per endpoint with every adaptive run
(coloured by the plan source that scheduled it, failures ringed in red), the static
replay's runs as grey ticks, paused stretches, planner changes and incidents; the
cadence of each endpoint over time (seconds between runs, adaptive against static);
and the list of schedule changes with their reasons.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from html import escape

from cadenza.simulation.result import (
    ALERT_TIERS,
    Mode,
    RunRecord,
    SimulationResult,
    pause_windows,
)
from cadenza.simulation.summary import figures_table

_SOURCE_COLOURS = {
    "baseline-interval": "#4c78a8",
    "baseline-cron": "#4c78a8",
    "hint-interval": "#f58518",
    "hint-one-shot": "#b279a2",
    "run-now": "#b279a2",
    "clamped-min": "#e45756",
    "clamped-max": "#e45756",
    "paused": "#54a24b",
}
_LABEL_W = 220
_PLOT_W = 760
_LANE_H = 28
_TOP = 34
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1040px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12.5px}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 8px;border-bottom:1px solid #ddd}
th{text-align:left} .legend span{margin-right:14px} .grid{display:flex;flex-wrap:wrap;gap:10px}
.muted{color:#666}
"""


def _x(result: SimulationResult, minute: float) -> float:
    return _LABEL_W + _PLOT_W * minute / result.scenario.duration_minutes


def _axis(result: SimulationResult, height: float) -> list[str]:
    parts = []
    duration = result.scenario.duration_minutes
    step = 5 if duration <= 60 else 15
    for minute in range(0, int(duration) + 1, step):
        x = _x(result, minute)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 6}" x2="{x:.1f}" y2="{height}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP - 10}" font-size="11" text-anchor="middle">'
            f"{minute}′</text>"
        )
    return parts


def _lane(
    adaptive: SimulationResult, static: SimulationResult | None, name: str, y: float
) -> list[str]:
    parts = [f'<text x="4" y="{y + 17}" font-size="12">{escape(name)}</text>']
    end = adaptive.scenario.end
    for start, until in pause_windows(adaptive.changes).get(name, []):
        x0 = _x(adaptive, adaptive.minute(start))
        x1 = _x(adaptive, adaptive.minute(min(until, end)))
        parts.append(
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{_LANE_H - 8}" fill="#ececec"><title>paused</title></rect>'
        )
    if static is not None:
        for run in static.runs_of(name):
            x = _x(static, static.minute(run.started_at))
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + _LANE_H - 5}" x2="{x:.1f}" '
                f'y2="{y + _LANE_H - 1}" stroke="#999"/>'
            )
    for change in adaptive.changes_to(name):
        if change.actor != "planner":
            continue
        x = _x(adaptive, adaptive.minute(change.at))
        tip = escape(f"{change.action}: {change.reason}")
        parts.append(
            f'<path d="M{x - 4:.1f},{y + 1} L{x + 4:.1f},{y + 1} L{x:.1f},{y + 7} Z" '
            f'fill="#333"><title>{tip}</title></path>'
        )
    parts.extend(_dot(adaptive, run, y) for run in adaptive.runs_of(name))
    return parts


def _dot(result: SimulationResult, run: RunRecord, y: float) -> str:
    x = _x(result, result.minute(run.started_at))
    colour = _SOURCE_COLOURS.get(run.source, "#333")
    ring = "" if run.ok else ' stroke="#d62728" stroke-width="2.5"'
    body = ", ".join(f"{k}={v}" for k, v in sorted(run.body.items()))
    tip = escape(f"{result.minute(run.started_at):.2f}′ {run.source} HTTP {run.http_status} {body}")
    return (
        f'<circle cx="{x:.1f}" cy="{y + _LANE_H / 2:.1f}" r="4" fill="{colour}"{ring}>'
        f"<title>{tip}</title></circle>"
    )


def swimlanes(adaptive: SimulationResult, static: SimulationResult | None) -> str:
    names = [e.name for e in adaptive.scenario.endpoints]
    height = _TOP + _LANE_H * len(names) + 8
    parts = _axis(adaptive, height)
    for index, name in enumerate(names):
        parts.extend(_lane(adaptive, static, name, _TOP + index * _LANE_H))
    for incident in adaptive.scenario.incidents:
        x = _x(adaptive, incident.start_minute)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{height}" '
            f'stroke="#d62728" stroke-dasharray="4 3"><title>{escape(incident.name)}'
            "</title></line>"
        )
    width = _LABEL_W + _PLOT_W + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="runs per endpoint">{"".join(parts)}</svg>'
    )


def _gaps(result: SimulationResult, name: str) -> list[tuple[float, float]]:
    starts = [r.started_at for r in result.runs_of(name)]
    return [
        (result.minute(b), max((b - a).total_seconds(), 1.0)) for a, b in itertools.pairwise(starts)
    ]


def cadence_chart(adaptive: SimulationResult, static: SimulationResult | None, name: str) -> str:
    """Seconds between consecutive runs (log scale) over the scenario's minutes."""
    w, h, pad = 320, 110, 28
    series = [("#f58518", _gaps(adaptive, name), "")]
    if static is not None:
        series.append(("#999", _gaps(static, name), ' stroke-dasharray="4 3"'))
    values = [g for _, points, _ in series for _, g in points]
    low, high = math.log10(min(values)), math.log10(max(values))
    span = max(high - low, 0.5)
    duration = adaptive.scenario.duration_minutes

    def point(minute: float, gap: float) -> str:
        x = pad + (w - pad - 6) * minute / duration
        y = h - 18 - (h - 34) * (math.log10(gap) - low) / span
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<text x="4" y="12" font-size="12">{escape(name)}</text>',
        f'<text x="2" y="{h - 18}" font-size="10" class="muted">{10**low:.0f}s</text>',
        f'<text x="2" y="26" font-size="10">{10 ** (low + span):.0f}s</text>',
        f'<text x="{pad}" y="{h - 4}" font-size="10">0′</text>',
        f'<text x="{w - 6}" y="{h - 4}" font-size="10" text-anchor="end">{duration:g}′</text>',
    ]
    for colour, points, dash in series:
        if points:
            path = " ".join(point(m, g) for m, g in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"{dash}/>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="cadence of {escape(name)}">{"".join(parts)}</svg>'
    )


def _changes_table(result: SimulationResult) -> str:
    rows = "".join(
        f"<tr><td>{result.minute(c.at):.2f}′</td><td>{escape(c.endpoint)}</td>"
        f"<td>{escape(c.action)}</td><td>{escape(c.actor)}</td><td>{escape(c.reason)}</td></tr>"
        for c in result.changes
    )
    head = "<tr><th>minute</th><th>endpoint</th><th>change</th><th>by</th><th>why</th></tr>"
    return f"<table>{head}{rows}</table>"


def _escalations(result: SimulationResult) -> str:
    runs = [r for r in result.runs if r.tier in ALERT_TIERS]
    if not runs:
        return "<p>No alert fired.</p>"
    items = "".join(
        f"<li>{result.minute(r.started_at):.2f}′ {escape(r.endpoint)}</li>" for r in runs
    )
    return f"<ul>{items}</ul>"


def _legend() -> str:
    names = {
        "baseline": "#4c78a8",
        "interval hint": "#f58518",
        "one-shot": "#b279a2",
        "clamped": "#e45756",
        "after a pause": "#54a24b",
    }
    spans = "".join(f'<span style="color:{c}">●</span> {n} ' for n, c in names.items())
    return (
        f'<p class="legend">{spans}<span style="color:#d62728">◯</span> failed '
        "▼ planner change, grey ticks: static replay, grey bars: paused, red dashes: "
        "incidents</p>"
    )


def render(results: Mapping[Mode, SimulationResult]) -> str:
    """The report of a comparison; ``results`` must hold the adaptive replay."""
    adaptive = results[Mode.ADAPTIVE]
    static = results.get(Mode.STATIC)
    scenario = adaptive.scenario
    story = "".join(f"<li>{escape(line)}</li>" for line in scenario.story)
    busy = [e.name for e in scenario.endpoints if len(adaptive.runs_of(e.name)) >= 3]
    charts = "".join(cadence_chart(adaptive, static, name) for name in busy)
    table = escape("\n".join(figures_table(results)))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(scenario.title)} · Cadenza simulation</title><style>{_CSS}</style></head>
<body>
<h1>{escape(scenario.title)}</h1>
<p class="muted">{escape(scenario.use_case)} · {scenario.duration_minutes:g} minutes from
{scenario.start.isoformat()} · seed {adaptive.seed}</p>
<p>{escape(scenario.description)}</p>
<ol>{story}</ol>
<h2>Figures: adaptive against static</h2>
<pre>{table}</pre>
<p class="muted">static: the same setup on its baselines, nobody steering. static-tight: every
endpoint awake at its tight cadence for the whole scenario.</p>
<h2>Runs per endpoint (adaptive)</h2>
{_legend()}
{swimlanes(adaptive, static)}
<h2>Cadence over time</h2>
<p class="muted">Seconds between runs, log scale: orange adaptive, grey dashed static.</p>
<div class="grid">{charts}</div>
<h2>Escalations</h2>
{_escalations(adaptive)}
<h2>Schedule changes (hints, pauses, resumes)</h2>
{_changes_table(adaptive)}
</body></html>
"""
