"""Pictures of an endpoint's recent history, drawn on the server as inline SVG.

``swimlane`` draws the runs on a time axis, each coloured by the plan source that
scheduled it (failures ringed), the schedule changes on a second lane (interval
hints and pauses as bands over the time they were in force, one-shots, resumes and
cleared hints as marks; the planner's own changes drawn as diamonds), and the next
planned runs as hollow marks after "now". ``sparkline`` is the small duration line
of the job page. ``series`` gives the cadence and duration over time as columns for
the charts (uPlot, in the browser). Every mark has a ``<title>``, so the pictures
read in a screen reader's or a pointer's tooltip too. Every attribute and text is
escaped by ``_tag``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

WIDTH = 960
LANE_H = 34
LEFT = 84
RIGHT = 14
TOP = 8
AXIS_H = 22
MARK_R = 5.0
TICKS = 5

CHANGE_LABELS = {
    "apply_interval_hint": "interval hint",
    "schedule_one_shot_run": "one-shot",
    "trigger_run": "run now",
    "cancel_one_shot": "one-shot cancelled",
    "pause_endpoint": "pause",
    "resume_endpoint": "resume",
    "clear_adaptive_hints": "hints cleared",
    "reset_failure_count": "failures reset",
    "update_endpoint": "edited",
    "set_endpoint_planner": "planner settings",
    "pause_job": "job paused",
    "resume_job": "job resumed",
}
"""The audit actions the timeline draws, and how it names them."""

_BANDS = {"apply_interval_hint": "hint", "pause_endpoint": "pause", "pause_job": "pause"}


def _tag(
    name: str,
    attrs: Mapping[str, object],
    title: str | None = None,
    inner: Iterable[str] = (),
) -> str:
    """One SVG element as text, its attribute values and title escaped; numbers are
    written with one decimal. (Plain strings, not ``Markup.format``: a swimlane has
    thousands of elements and this is several times faster.)"""
    attributes = "".join(
        f' {key}="{f"{value:.1f}" if isinstance(value, float) else escape(str(value))}"'
        for key, value in attrs.items()
    )
    body = "".join(inner)
    if title is not None:
        body = f"<title>{escape(title)}</title>{body}"
    return f"<{name}{attributes}>{body}</{name}>"


def _svg(attrs: Mapping[str, object], parts: Iterable[str]) -> Markup:
    # Every value and text inside went through ``escape`` in ``_tag``.
    return Markup(_tag("svg", attrs, inner=parts))  # noqa: S704


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def x(self, at: datetime) -> float:
        length = (self.end - self.start).total_seconds() or 1.0
        share = (at - self.start).total_seconds() / length
        return LEFT + max(0.0, min(1.0, share)) * (WIDTH - LEFT - RIGHT)


def _window(times: list[datetime]) -> Window:
    start, end = min(times), max(times)
    if end - start < timedelta(minutes=1):
        start = end - timedelta(minutes=1)
    pad = (end - start) * 0.03
    return Window(start - pad, end + pad)


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S")


def _tick_format(window: Window) -> str:
    """Seconds on a short axis, dates on one longer than two days."""
    length = window.end - window.start
    if length <= timedelta(minutes=10):
        return "%H:%M:%S"
    return "%H:%M" if length <= timedelta(days=2) else "%m-%d %H:%M"


def _axis(window: Window, y: float) -> list[str]:
    parts = [_tag("line", {"class": "axis", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": y, "y2": y})]
    fmt = _tick_format(window)
    for i in range(TICKS + 1):
        at = window.start + (window.end - window.start) * (i / TICKS)
        x = window.x(at)
        anchor = "start" if i == 0 else "end" if i == TICKS else "middle"
        parts.append(_tag("line", {"class": "tick", "x1": x, "x2": x, "y1": y, "y2": y + 4}))
        text = {"class": "tick-label", "x": x, "y": y + 16, "text-anchor": anchor}
        parts.append(_tag("text", text, inner=[at.astimezone(UTC).strftime(fmt)]))
    return parts


def _run_mark(window: Window, run: Any, y: float) -> str:
    http = f" · HTTP {run.http_status}" if run.http_status else ""
    title = f"{run.status.value} · {run.source.value} · {_clock(run.started_at)} UTC{http}"
    css = f"run src-{run.source.value}" + ("" if run.status.ok else " failed")
    attrs = {"class": css, "cx": window.x(run.started_at), "cy": y, "r": MARK_R}
    return _tag("circle", attrs, title)


def _time_in(change: Any, key: str) -> datetime | None:
    value = change.changes.get(key)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _change_mark(window: Window, change: Any, y: float) -> str:
    by = change.actor.name or change.actor.id
    title = (
        f"{CHANGE_LABELS[change.action]} by {change.actor.kind} {by} "
        f"at {_clock(change.at)} UTC. {change.reason}"
    )
    x = window.x(change.at)
    planner = " planner" if change.actor.kind == "planner" else ""
    end = _time_in(change, "expires_at") or _time_in(change, "until")
    band = _BANDS.get(change.action)
    if band and end is not None:
        width = max(2.0, window.x(end) - x)
        attrs = {"class": f"band {band}{planner}", "x": x, "y": y - 9, "width": width}
        return _tag("rect", {**attrs, "height": 18, "rx": 3}, title)
    if planner:
        return _tag(
            "path", {"class": "change planner", "d": f"M{x:.1f} {y - 7}l7 7-7 7-7-7z"}, title
        )
    attrs = {"class": f"change {change.action}", "x": x - 2, "y": y - 9, "width": 4, "height": 18}
    return _tag("rect", attrs, title)


def swimlane(
    runs: Sequence[Any], changes: Sequence[Any], upcoming: Sequence[datetime], now: datetime
) -> Markup:
    """The runs lane, the changes lane, the planned runs and the time axis as SVG."""
    drawn = [c for c in changes if c.action in CHANGE_LABELS]
    window = _window([r.started_at for r in runs] + [c.at for c in drawn] + [*upcoming, now])
    runs_y, changes_y = TOP + LANE_H / 2, TOP + LANE_H * 1.5
    axis_y = TOP + LANE_H * 2 + 4
    now_x = window.x(now)
    parts = [
        _tag("text", {"class": "lane-label", "x": 4, "y": runs_y + 4}, inner=["Runs"]),
        _tag("text", {"class": "lane-label", "x": 4, "y": changes_y + 4}, inner=["Changes"]),
        *(_change_mark(window, c, changes_y) for c in drawn),
        *(_run_mark(window, r, runs_y) for r in runs),
        *(
            _tag(
                "circle",
                {"class": "planned", "cx": window.x(at), "cy": runs_y, "r": MARK_R},
                f"planned {_clock(at)} UTC",
            )
            for at in upcoming
        ),
        _tag("line", {"class": "now", "x1": now_x, "x2": now_x, "y1": TOP, "y2": axis_y}, "now"),
        *_axis(window, axis_y),
    ]
    svg = {
        "class": "swimlane",
        "viewBox": f"0 0 {WIDTH} {axis_y + AXIS_H:.0f}",
        "role": "img",
        "aria-label": "Runs and schedule changes over time",
        "preserveAspectRatio": "none",
    }
    return _svg(svg, parts)


def sparkline(runs: Sequence[Any], width: int = 120, height: int = 24) -> Markup:
    """Durations of ``runs`` (newest first) as a small line, failures as red dots."""
    if not runs:
        return Markup('<span class="muted">no runs yet</span>')
    ordered = list(reversed(runs))
    durations = [r.duration_seconds for r in ordered]
    top = max(durations) or 1.0
    step = width / max(1, len(ordered) - 1)
    points = [
        (i * step if len(ordered) > 1 else width / 2, height - 2 - (d / top) * (height - 4))
        for i, d in enumerate(durations)
    ]
    dots = [
        _tag("circle", {"class": "failed-dot", "cx": x, "cy": y, "r": 2.2})
        for (x, y), run in zip(points, ordered, strict=True)
        if not run.status.ok
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    attrs = {
        "class": "spark",
        "viewBox": f"0 0 {width} {height}",
        "width": width,
        "height": height,
        "role": "img",
        "aria-label": f"Durations of the last {len(ordered)} runs",
    }
    return _svg(attrs, [_tag("polyline", {"points": line}), *dots])


def series(runs: Sequence[Any]) -> dict[str, list[float | None]]:
    """Columns for the charts, oldest first: start time (Unix seconds), the gap since
    the previous run's start (the cadence actually achieved) and the duration."""
    ordered = sorted(runs, key=lambda r: r.started_at)
    times = [r.started_at.timestamp() for r in ordered]
    cadence: list[float | None] = [None, *(b - a for a, b in itertools.pairwise(times))]
    return {"t": times, "cadence": cadence, "duration": [r.duration_seconds for r in ordered]}
