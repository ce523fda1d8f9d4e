"""Retention: how long a tenant's history is kept.

A ``RetentionPolicy`` bounds runs by age (``run_days``) and/or by count per endpoint
(``runs_per_endpoint``: the newest N of each endpoint stay), and audit events by age
(``audit_days``, a setting of their own because an audit trail is usually kept longer
than run history). A limit left ``None`` keeps that history forever; a tenant without
a policy keeps everything.

Ages are measured on the rows' ids, which sort by the time they were made (a run's
id is made when its result is recorded, an audit event's when the change was): the
store deletes by the primary key's order and needs no time index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cadenza.domain import errors

MAX_RETENTION_DAYS = 36_500
MAX_RUNS_PER_ENDPOINT = 1_000_000


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    tenant_id: str
    run_days: int | None = None
    runs_per_endpoint: int | None = None
    audit_days: int | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        for name, value, top in (
            ("run_days", self.run_days, MAX_RETENTION_DAYS),
            ("runs_per_endpoint", self.runs_per_endpoint, MAX_RUNS_PER_ENDPOINT),
            ("audit_days", self.audit_days, MAX_RETENTION_DAYS),
        ):
            if value is not None and not 1 <= value <= top:
                raise errors.InvalidInput([(name, f"{name} must be between 1 and {top}.")])

    @property
    def prunes(self) -> bool:
        """Whether this policy deletes anything at all."""
        return any(v is not None for v in (self.run_days, self.runs_per_endpoint, self.audit_days))

    def runs_before(self, now: datetime) -> datetime | None:
        """Runs recorded before this instant are deleted (``None``: none by age)."""
        return None if self.run_days is None else now - timedelta(days=self.run_days)

    def audit_before(self, now: datetime) -> datetime | None:
        return None if self.audit_days is None else now - timedelta(days=self.audit_days)
