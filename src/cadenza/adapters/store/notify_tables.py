"""The tables of notifications (migration ``0006_notify``), on the shared ``metadata``.

Channel and rule settings are JSON text read and written whole; a channel's secret
(SMTP password, Slack webhook URL) is its own column, sealed by the secret box like
secret header values. At most one incident per rule and subject is open: a partial
unique index on ``(rule_id, subject)`` where ``resolved_at`` is null enforces it on
both databases.
"""

from __future__ import annotations

import sqlalchemy as sa

from cadenza.adapters.store.tables import UtcDateTime, metadata

notify_channels = sa.Table(
    "notify_channels",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("rule_id", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("notified_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_at", UtcDateTime(), nullable=True),
    sa.Column("notifications", sa.Integer, nullable=False),
    sa.Index(None, "tenant_id", "id"),
    sa.Index(
        "uq_incidents_open",
        "rule_id",
        "subject",
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    ),
)

notify_deliveries = sa.Table(
    "notify_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant_id", sa.String(40), nullable=False),
    sa.Column("incident_id", sa.String(40), nullable=False),
    sa.Column("channel_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Index(None, "incident_id"),
)
