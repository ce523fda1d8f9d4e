"""The schema, once, for SQLite and PostgreSQL (SQLAlchemy Core).

Timestamps: ``UtcDateTime`` is ``timestamptz`` on PostgreSQL and an integer count of
microseconds since the Unix epoch on SQLite. SQLite has no date type; integers sort
and compare exactly, index compactly and let the claim compute ``lease_until`` with
plain arithmetic. Durations the scheduler computes with (``jitter_us``,
``lease_budget_us``) are integer microseconds on both backends.

Nested configuration (request, baseline, guardrails, hints, pause, tags, audit
changes) is JSON text: the store only ever reads and writes it whole, and keeping
the raw text lets the codec cache decoded values. Everything the scheduler filters,
sorts or updates is a real column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime | None) -> int | None:
    """Microseconds since the epoch (``None`` stays ``None``); refuses naive datetimes
    (they would be guesses)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Cadenza stores aware UTC times only")
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int | None) -> datetime | None:
    """The inverse of ``to_micros``."""
    return None if value is None else EPOCH + value * _MICROSECOND


def _check_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Cadenza stores aware UTC times only")
    return value


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes: ``timestamptz`` on PostgreSQL, epoch microseconds on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        return to_micros if dialect.name == "sqlite" else _check_aware

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return from_micros if dialect.name == "sqlite" else None


def _id(name: str = "id", **kw: Any) -> sa.Column[str]:
    return sa.Column(name, sa.String(40), **kw)


def _ts(name: str, nullable: bool = True, **kw: Any) -> sa.Column[datetime]:
    return sa.Column(name, UtcDateTime(), nullable=nullable, **kw)


STATE = {"state": True}


def _revision() -> sa.Column[int]:
    """Counts the writes of people, agents and the planner to the row (never the
    scheduler's): a completion whose claimed copy has the current revisions of the
    endpoint and its job replans that copy instead of reading the row again."""
    return sa.Column("revision", sa.BigInteger, nullable=False, server_default=sa.text("0"))


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = sa.Table(
    "users",
    metadata,
    _id(primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    _ts("created_at", nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(primary_key=True),
    _id("tenant_id", nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("prefix", sa.String(64), nullable=False, unique=True),
    sa.Column("digest", sa.String(128), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    _ts("created_at", nullable=False),
    _ts("expires_at"),
    _ts("last_used_at"),
    _ts("revoked_at"),
    sa.Index(None, "tenant_id", "id"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    _id(primary_key=True),
    _id("tenant_id", nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("pause", sa.Text),
    # Derived from ``pause`` so that list_jobs can filter on status in SQL.
    sa.Column("paused", sa.Boolean, nullable=False),
    _ts("paused_until"),
    sa.Column("planner_enabled", sa.Boolean, nullable=False),
    _ts("archived_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _revision(),
    sa.Index(None, "tenant_id", "id"),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    _id(primary_key=True),
    _id("job_id", nullable=False),
    _id("tenant_id", nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("tier", sa.String(64), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    # The JSON document null for an on-demand endpoint (no baseline).
    sa.Column("baseline", sa.Text, nullable=False),
    sa.Column("guardrails", sa.Text, nullable=False),
    sa.Column("catch_up", sa.String(16), nullable=False),
    sa.Column("jitter_us", sa.BigInteger, nullable=False),
    sa.Column("planner_enabled", sa.Boolean, nullable=False),
    # STATE marks what runs and schedule-changing actions move (codec.STATE_COLUMNS).
    sa.Column("interval_hint", sa.Text, info=STATE),
    # The queue of one-shots, a JSON list (NULL: none), so a claim and a completion
    # still read and write one row per endpoint.
    sa.Column("one_shots", sa.Text, info=STATE),
    sa.Column("pause", sa.Text, info=STATE),
    _ts("archived_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("next_run_at", info=STATE),
    sa.Column("next_run_source", sa.String(32), info=STATE),
    _ts("last_run_at", info=STATE),
    _ts("last_scheduled_for", info=STATE),
    sa.Column("last_status", sa.String(16), info=STATE),
    sa.Column("failure_count", sa.Integer, nullable=False, info=STATE),
    sa.Column("success_streak", sa.Integer, nullable=False, info=STATE),
    sa.Column("attempt", sa.Integer, nullable=False, info=STATE),
    _ts("retry_after_until", info=STATE),
    # request.lease_budget, kept as a column so the claim computes lease_until in SQL.
    sa.Column("lease_budget_us", sa.BigInteger, nullable=False),
    sa.Column("lease_owner", sa.String(200)),
    _ts("lease_until"),
    sa.Column("lease_epoch", sa.BigInteger, nullable=False),
    # The slot and time of the current claim, for the run the sweeper records as lost.
    _ts("lease_slot"),
    _ts("lease_claimed_at"),
    _revision(),
    sa.Column("delivery", sa.String(16), nullable=False),
    # When the current claim's request was about to leave (set before it is sent):
    # a dead worker's lease with it set ran an attempt whose outcome is unknown.
    _ts("lease_started_at"),
    # Overlap policy (skip/allow) and its bound. With allow, a run leaves the lease
    # for a row of ``flights`` as it starts; ``in_flight`` counts those rows, and the
    # claim takes the endpoint only while it is below ``max_in_flight``.
    # ``outcome_for``: the slot of the newest outcome folded (``lifecycle``).
    sa.Column("overlap", sa.String(8), nullable=False, server_default=sa.text("'skip'")),
    sa.Column("max_in_flight", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("in_flight", sa.Integer, nullable=False, server_default=sa.text("0")),
    _ts("outcome_for"),
    sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
    # Lists are per job; no (tenant_id, id) index: on PostgreSQL every claim and every
    # completion rewrites the row and so inserts into every index of the table.
    sa.Index(None, "job_id", "id"),
    # The claim scans only unleased, scheduled rows: its cost follows the due rows,
    # not the backlog of leased ones or the unscheduled ones.
    sa.Index(
        "ix_endpoints_due",
        "next_run_at",
        sqlite_where=sa.text("lease_owner IS NULL AND next_run_at IS NOT NULL"),
        postgresql_where=sa.text("lease_owner IS NULL AND next_run_at IS NOT NULL"),
    ),
    # The leased rows, for sweeps and counts (``sql._HOLDS_LEASE``). Keyed on
    # lease_until, set and cleared with lease_owner: a fenced statement (``lease_owner
    # = …``) does not imply this predicate, so it always goes by the primary key; on
    # ``lease_owner IS NOT NULL`` PostgreSQL read every lease held for each fenced row
    # whenever its statistics counted few leases (migration 0012).
    sa.Index(
        "ix_endpoints_leased",
        "lease_until",
        sqlite_where=sa.text("lease_until IS NOT NULL"),
        postgresql_where=sa.text("lease_until IS NOT NULL"),
    ),
)

flights = sa.Table(
    # Runs of ``overlap=allow`` endpoints in flight: each is the lease of one run,
    # fenced on the epoch of the claim it came from, swept like an endpoint's lease.
    "flights",
    metadata,
    _id("endpoint_id", primary_key=True),
    sa.Column("epoch", sa.BigInteger, primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    _ts("until", nullable=False),
    _ts("scheduled_for", nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    _ts("started_at", nullable=False),
    sa.Index(None, "until"),
    sa.Index(None, "owner"),
)

runs = sa.Table(
    "runs",
    metadata,
    _id(primary_key=True),
    _id("endpoint_id", nullable=False),
    _id("job_id", nullable=False),
    _id("tenant_id", nullable=False),
    _ts("scheduled_for", nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at", nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("missed_slots", sa.Integer, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("response_body", sa.LargeBinary),
    sa.Column("response_meta", sa.Text),
    sa.Column("worker_id", sa.String(200), nullable=False),
    sa.Column("http_attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    # No foreign key to endpoints: runs are recorded only for endpoints the store has
    # just claimed or swept, and endpoints are archived, never deleted. On PostgreSQL
    # the check locked the endpoint row (FOR KEY SHARE, a heap write) for every run.
    sa.UniqueConstraint("endpoint_id", "scheduled_for", "attempt"),
    # Every run recorded inserts into every index: only what the run lists need.
    # By start time they page through (tenant_id, id), filtering: ids sort by time.
    sa.Index(None, "tenant_id", "id"),
    sa.Index(None, "endpoint_id", "id"),
    sa.Index(None, "job_id", "id"),
    sa.Index(None, "tenant_id", "status", "id"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    _id(primary_key=True),
    _id("tenant_id", nullable=False),
    _ts("at", nullable=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("actor_name", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_kind", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("changes", sa.Text, nullable=False),
    sa.Index(None, "tenant_id", "id"),
    sa.Index(None, "tenant_id", "target_id", "id"),
    sa.Index(None, "tenant_id", "actor_id", "id"),
)

# The planner's tables (``planner_sql``). A session's columns are what it is listed
# by; the rest of it (planner kind, tool calls, proposal ids, next look, error) is
# the JSON ``transcript``. Settings are one JSON document per endpoint.
planner_sessions = sa.Table(
    "planner_sessions",
    metadata,
    _id(primary_key=True),
    _id("tenant_id", nullable=False),
    _id("job_id"),
    _id("endpoint_id"),
    sa.Column("trigger", sa.String(64), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("transcript", sa.Text, nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    sa.Index(None, "tenant_id", "started_at"),
    sa.Index(None, "endpoint_id", "id"),
    sa.Index(None, "tenant_id", "id"),
)

planner_settings = sa.Table(
    "planner_settings",
    metadata,
    _id("endpoint_id", primary_key=True),
    _id("tenant_id", nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)

planner_proposals = sa.Table(
    "planner_proposals",
    metadata,
    _id(primary_key=True),
    _id("tenant_id", nullable=False),
    _id("session_id", nullable=False),
    _id("endpoint_id", nullable=False),
    sa.Column("target_id", sa.String(200), nullable=False),
    sa.Column("verb", sa.String(32), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    _ts("created_at", nullable=False),
    _ts("decided_at"),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Index(None, "tenant_id", "id"),
    sa.Index(None, "tenant_id", "status", "id"),
    sa.Index(None, "endpoint_id", "id"),
)

planner_token_usage = sa.Table(
    "planner_token_usage",
    metadata,
    _id("tenant_id", primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("tokens", sa.BigInteger, nullable=False),
)

planner_watches = sa.Table(
    "planner_watches",
    metadata,
    _id("endpoint_id", primary_key=True),
    _id("tenant_id", nullable=False),
    _id("job_id", nullable=False),
    _ts("due_at"),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("fired", sa.Text, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Index(None, "due_at"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    _ts("started_at", nullable=False),
    _ts("heartbeat_at", nullable=False),
)
