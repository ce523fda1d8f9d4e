"""Readiness: can this process do its work right now?

``Readiness.check`` answers three questions, each bounded by ``timeout`` seconds:

* ``database``: a trivial query answers;
* ``migrations``: the database's Alembic revision is the one this code ships
  (``expected_revision`` reads the migration files, without loading Alembic);
* ``scheduler``: this process's scheduler (when it runs one) beat its heart within
  ``max_heartbeat_age`` seconds; the heartbeat is a database write, so a stale one
  means the worker loop or its database is stuck.

Liveness (``/healthz``) needs none of this: answering at all is the answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.migrate import MIGRATIONS
from cadenza.ports import Clock, Store

_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_VERSION = sa.text("SELECT version_num FROM alembic_version")


def expected_revision(versions: Path = MIGRATIONS / "versions") -> str:
    """The head revision among the shipped migration scripts (the one nothing revises)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in versions.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        if found := _REVISION.search(text):
            revisions.add(found.group(1))
        if down := _DOWN.search(text):
            revised.add(down.group(1))
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"The migrations have {len(heads)} heads: {sorted(heads)}.")
    return heads.pop()


@dataclass(frozen=True, slots=True)
class Report:
    """Each check's verdict: ``ok`` or why not."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())


class Readiness:
    """See the module docstring. ``heartbeat`` returns the monotonic time of the
    scheduler's last successful heartbeat (``None`` before the first); leave it out
    in a process without a scheduler."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        heartbeat: Callable[[], float | None] | None = None,
        max_heartbeat_age: float = 15.0,
        timeout: float = 2.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._heartbeat = heartbeat
        self._max_age = max_heartbeat_age
        self._timeout = timeout
        self._expected = expected_revision() if isinstance(store, SqlStore) else None

    async def check(self) -> Report:
        checks: dict[str, str] = {}
        if isinstance(self._store, SqlStore):
            checks.update(await self._database(self._store))
        if self._heartbeat is not None:
            checks["scheduler"] = self._scheduler(self._heartbeat())
        return Report(checks)

    async def _database(self, store: SqlStore) -> dict[str, str]:
        try:
            async with asyncio.timeout(self._timeout), store.reading() as reads:
                found = (await reads.execute(_VERSION)).scalar()
        except Exception as exc:  # any failure to answer is "not ready"
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            return {"database": f"unreachable: {reason}", "migrations": "unknown"}
        if found != self._expected:
            return {"database": "ok", "migrations": f"at {found}, expected {self._expected}"}
        return {"database": "ok", "migrations": "ok"}

    def _scheduler(self, beat: float | None) -> str:
        if beat is None:
            return "no heartbeat yet"
        age = self._clock.monotonic() - beat
        if age > self._max_age:
            return f"heartbeat {age:.0f} s old"
        return "ok"
