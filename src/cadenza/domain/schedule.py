"""Baseline schedules: cron in an IANA zone, or a fixed interval.

Cron follows cronsim's Debian-cron semantics, computed in the endpoint's zone: a
time inside a spring-forward gap fires once, right after the gap; a time inside a
repeated fall-back hour fires once, on its first occurrence. Expressions with a
wildcard minute or hour (``*/15 * * * *``, ``@hourly``) follow real time instead,
so they fire in both copies of the repeated hour, at distinct UTC instants.

Six fields put the seconds *first*, as cronsim (and Quartz, Spring) read them:
``second minute hour day-of-month month day-of-week``. Seconds last is refused
when it cannot be read seconds first (the usual case: a seconds value in the
day-of-week place), with a message naming each field; ``CRON_FORM`` is the one
sentence every surface (schema, MCP, docs) shows.

Every fire is returned in UTC and is strictly after the time asked about, even when
that time lies in the second copy of a repeated hour (where cronsim, working on
wall-clock time, would hand back the first copy, an instant already past).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from cadenza.domain import errors, limits

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; raises ``UnknownTimezone``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.UnknownTimezone(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin'.",
            "baseline.timezone",
        ) from None


CRON_FORM = "5 fields, or 6 with seconds first (S M H DoM Mon DoW), or @hourly/@daily/..."
_FIVE = "minute hour day-of-month month day-of-week"
_SIX = "second minute hour day-of-month month day-of-week"


def _refusal(expression: str, exc: Exception) -> str:
    """Why ``expression`` is refused, naming each field of the form it has."""
    fields = expression.split()
    text = f"Invalid cron expression {expression!r}: {exc}."
    if len(fields) == 6:
        text += f" Six fields are read seconds first: {_SIX}."
        if fields[-1].isdigit() and int(fields[-1]) > 7:
            text += " The last field looks like seconds: move it to the front."
        return text
    return text + f" Five fields are {_FIVE}; six are seconds first: {_SIX}."


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A 5-field (or 6-field, seconds first) expression in ``timezone``."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        tz = zone(self.timezone)
        try:
            next(CronSim(self.expanded, datetime(2000, 1, 1, tzinfo=tz)))
        except (CronSimError, StopIteration, ValueError) as exc:
            raise errors.InvalidCron(_refusal(self.expression, exc), "baseline.cron") from None

    @property
    def expanded(self) -> str:
        text = " ".join(self.expression.split())
        return MACROS.get(text.lower(), text)

    def next_after(self, now: datetime) -> datetime | None:
        """The first fire strictly after ``now`` (UTC), or ``None`` if it never fires."""
        return next(self.fires_after(now), None)

    def fires_after(self, now: datetime) -> Iterator[datetime]:
        """Every fire strictly after ``now``, in UTC and strictly increasing."""
        local = now.astimezone(zone(self.timezone))
        floor = now
        for fire in CronSim(self.expanded, local):
            utc = fire.astimezone(UTC)
            # cronsim walks wall-clock time and drops ``fold``: from inside the second
            # copy of a repeated hour it yields the first copy, which is already past.
            # Tracking the last fire keeps the sequence strictly increasing regardless.
            if utc > floor:
                floor = utc
                yield utc


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """Every ``every``, on a lattice starting at ``start_at`` (or the creation time)."""

    every: timedelta
    start_at: datetime | None = None

    def __post_init__(self) -> None:
        if not limits.MIN_INTERVAL <= self.every <= limits.MAX_INTERVAL:
            raise errors.InvalidInterval(
                f"Interval must be between {limits.MIN_INTERVAL.total_seconds():.0f} s and "
                f"{limits.MAX_INTERVAL.days} days; got {self.every.total_seconds():g} s.",
                "baseline.interval_seconds",
            )


Baseline = CronSchedule | IntervalSchedule
