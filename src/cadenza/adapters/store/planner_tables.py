"""The planner's tables (migration ``0002_planner``), on the shared ``metadata``.

Sessions use the ``planner_sessions`` table of ``0001``: the columns it has are
filled directly and the rest of a session (planner kind, tool calls, proposal ids,
next look, error) is the JSON ``transcript``. Settings are one JSON document per
endpoint, read and written whole, in the same shape the actions speak.
"""

from __future__ import annotations

import sqlalchemy as sa

from cadenza.adapters.store.tables import UtcDateTime, metadata, planner_sessions


def _id(name: str = "id", *, primary_key: bool = False, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(40), primary_key=primary_key, nullable=nullable)


sa.Index(None, planner_sessions.c.tenant_id, planner_sessions.c.id)

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
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("decided_at", UtcDateTime(), nullable=True),
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
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("fired", sa.Text, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Index(None, "due_at"),
)
