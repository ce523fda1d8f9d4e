"""What people type on the command line, turned into what the API takes.

* Durations: ``30s``, ``5m``, ``1h30m``, ``2d``, ``1.5h``, ``250ms``, or a bare number
  of seconds. The API takes seconds as numbers (fields named ``…_seconds``).
* Times: RFC 3339 (``2026-12-31T06:00Z``, an offset is required), ``now``, or a time
  relative to now: ``+10m`` (ahead) or ``-1h`` (ago). The API takes RFC 3339 in UTC.
* JSON values: inline JSON, ``@path`` to read a file, or ``@-`` for standard input.

Each parser raises ``BadValue`` with a message that says what is accepted.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cadenza.ports import Clock

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_DURATION_HELP = "a duration such as 30s, 5m, 1h30m or 2d (a bare number is seconds)"


class BadValue(ValueError):
    """A value typed on the command line that cannot mean anything."""


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (see the module docstring); never negative."""
    cleaned = text.strip().lower()
    try:
        value = float(cleaned)
    except ValueError:
        value = _sum_of_parts(cleaned, text)
    if value < 0 or value != value or value == float("inf"):
        raise BadValue(f"{text!r} is not {_DURATION_HELP}.")
    return value


def _sum_of_parts(cleaned: str, original: str) -> float:
    position, total = 0, 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(cleaned) or not cleaned:
        raise BadValue(f"{original!r} is not {_DURATION_HELP}.")
    return total


def parse_time(text: str, clock: Clock) -> str:
    """An RFC 3339 UTC time for ``text`` (see the module docstring)."""
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return _rfc3339(clock.now())
    if cleaned[:1] in "+-" and cleaned[1:2] and not cleaned[1:2].isspace():
        offset = timedelta(seconds=parse_duration(cleaned[1:]))
        return _rfc3339(clock.now() + offset if cleaned[0] == "+" else clock.now() - offset)
    try:
        value = datetime.fromisoformat(cleaned.replace("z", "Z"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise BadValue(
            f"{text!r} is not a time: give RFC 3339 with an offset "
            "(2026-12-31T06:00:00Z), now, or a relative time such as +10m or -1h."
        )
    return _rfc3339(value)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_json(text: str) -> Any:
    """A JSON value given inline, as ``@path`` or as ``@-`` (standard input)."""
    source = text
    if text.startswith("@"):
        source = _read(text[1:])
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        where = f" in {text[1:]}" if text.startswith("@") else ""
        raise BadValue(f"Not valid JSON{where}: {exc.msg} at line {exc.lineno}.") from None


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadValue(f"Cannot read {path}: {exc.strerror}.") from None


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` as a pair; the value may be empty, the name may not."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise BadValue(f"{text!r} is not a header: write it as 'Name: value'.")
    return name.strip(), value.strip()
