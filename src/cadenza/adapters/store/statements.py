"""The scheduler's other statements, built once per dialect.

Built once so SQLAlchemy's compiled cache is hit on every call; the parameters are
bound by name (``b_*`` where a column of the same name is also being set).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cadenza.adapters.store.tables import UtcDateTime, endpoints, runs

_E = endpoints.c

STATE_COLUMNS = (
    "interval_hint",
    "one_shot",
    "pause",
    "next_run_at",
    "next_run_source",
    "last_run_at",
    "last_scheduled_for",
    "last_status",
    "failure_count",
    "success_streak",
    "attempt",
)
"""What a completion writes besides releasing the lease (``documents.endpoint_state``)."""

_RELEASED: dict[str, Any] = {
    "lease_owner": None,
    "lease_until": None,
    "lease_slot": None,
    "lease_claimed_at": None,
}


def _fenced() -> sa.ColumnElement[bool]:
    return sa.and_(
        _E.id == sa.bindparam("b_id"),
        _E.lease_owner == sa.bindparam("b_owner"),
        _E.lease_epoch == sa.bindparam("b_epoch"),
    )


class Statements:
    """Release, extend and sweep, for SQLite or PostgreSQL (claim and complete: ``hot``)."""

    def __init__(self, *, pg: bool) -> None:
        self.pg = pg
        self.insert_lost_runs = self._insert_lost_runs()
        self.release = endpoints.update().where(_fenced()).values(**_RELEASED)
        self.extend = (
            endpoints.update()
            .where(_fenced())
            .values(lease_until=sa.bindparam("until", type_=UtcDateTime()))
        )
        self.lost = endpoints.update().where(_fenced()).values(attempt=_E.attempt + 1, **_RELEASED)
        self.owned = sa.select(_E.id, _E.lease_epoch).where(
            _E.id.in_(sa.bindparam("ids", expanding=True)),
            _E.lease_owner == sa.bindparam("owner"),
        )
        self.expired = self._expired()
        self.next_due = sa.select(sa.func.min(_E.next_run_at)).where(
            _E.lease_owner.is_(None), _E.next_run_at.is_not(None)
        )

    def _insert(self) -> Any:
        return (postgresql.insert if self.pg else sqlite.insert)(runs)

    def _insert_lost_runs(self) -> Any:
        return self._insert().on_conflict_do_nothing(
            index_elements=["endpoint_id", "scheduled_for", "attempt"]
        )

    def _expired(self) -> sa.Select[Any]:
        stmt = (
            sa.select(endpoints)
            .where(
                _E.lease_owner.is_not(None),
                _E.lease_until < sa.bindparam("now", type_=UtcDateTime()),
            )
            .order_by(_E.lease_until)
            .limit(sa.bindparam("limit", type_=sa.Integer()))
        )
        if self.pg:
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt
