"""The planner: settings per endpoint, proposals, token usage, watches.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_planner_sessions_tenant_id_id"),
        "planner_sessions",
        ["tenant_id", "id"],
        unique=False,
    )
    op.create_table(
        "planner_settings",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", name=op.f("pk_planner_settings")),
    )
    op.create_table(
        "planner_proposals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("target_id", sa.String(length=200), nullable=False),
        sa.Column("verb", sa.String(length=32), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planner_proposals")),
    )
    for columns in (["tenant_id", "id"], ["tenant_id", "status", "id"], ["endpoint_id", "id"]):
        op.create_index(
            op.f(f"ix_planner_proposals_{'_'.join(columns)}"), "planner_proposals", columns
        )
    op.create_table(
        "planner_token_usage",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "month", name=op.f("pk_planner_token_usage")),
    )
    op.create_table(
        "planner_watches",
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("fired", sa.Text(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", name=op.f("pk_planner_watches")),
    )
    op.create_index(op.f("ix_planner_watches_due_at"), "planner_watches", ["due_at"])


def downgrade() -> None:
    for table in (
        "planner_watches",
        "planner_token_usage",
        "planner_proposals",
        "planner_settings",
    ):
        op.drop_table(table)
    op.drop_index(op.f("ix_planner_sessions_tenant_id_id"), table_name="planner_sessions")
