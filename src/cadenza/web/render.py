"""Templates, the filters they use, and versioned URLs of the static files.

Pages are Jinja2 templates with autoescaping on. Static files (ours and the vendored
htmx and uPlot, with their licences) are served under ``/static`` with a content
hash in the query string, so browsers may keep them for a year and still see a new
release at once. Every HTML response carries a Content Security Policy that allows
scripts, styles, images and connections from this origin only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
STATIC_PATH = "/static"

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
"""Nothing inline, nothing from another origin (the htmx config turns off its
injected indicator styles, and charts read their data from JSON blocks)."""


def static_versions(root: Path = STATIC_DIR) -> dict[str, str]:
    """Each static file's path (relative to ``root``) and a short hash of its bytes."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def when(value: datetime | None) -> Markup:
    """A time as a ``<time>`` element, in UTC to the second."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{}">{} UTC</time>').format(utc.isoformat(), text)


def span(seconds: float | None) -> str:
    """A duration in the largest unit that keeps it short: 850 ms, 42 s, 5 min, 3 h, 2 d."""
    if seconds is None:
        return "—"
    size = abs(seconds)
    if size < 1:
        return f"{seconds * 1000:.0f} ms"
    if size < 120:
        return f"{seconds:.3g} s"
    if size < 7200:
        return f"{seconds / 60:.3g} min"
    if size < 172_800:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def relative(value: datetime | None, now: datetime) -> str:
    """``in 25 s`` or ``3 min ago`` from ``now``."""
    if value is None:
        return ""
    delta = (value - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(-delta)} ago"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), sort_keys=True, default=str)


class Templates:
    """The Jinja environment with the dashboard's filters and globals."""

    def __init__(self, static_hashes: Mapping[str, str] | None = None) -> None:
        self.hashes = dict(static_hashes if static_hashes is not None else static_versions())
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, span=span, percent=percent, compact_json=compact_json)
        self.env.globals.update(static=self.static_url, relative=relative, timedelta=timedelta)

    def static_url(self, path: str) -> str:
        version = self.hashes.get(path)
        if version is None:
            raise KeyError(f"No static file {path!r}.")
        return f"{STATIC_PATH}/{path}?v={version}"

    def render(self, template: str, data: Mapping[str, Any]) -> str:
        return self.env.get_template(template).render(data)

    def response(
        self, template: str, data: Mapping[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        return HTMLResponse(
            self.render(template, data),
            status_code=status_code,
            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store"},
        )
