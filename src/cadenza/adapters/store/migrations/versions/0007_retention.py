"""Retention policies, one per tenant.

Revision ID: 0007_retention
Revises: 0006_notify
Create Date: 2026-12-07

Pruning needs no new index: runs are deleted through (tenant_id, id) and
(endpoint_id, id), audit events through (tenant_id, id), and ids sort by time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0007_retention"
down_revision = "0006_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("run_days", sa.Integer(), nullable=True),
        sa.Column("runs_per_endpoint", sa.Integer(), nullable=True),
        sa.Column("audit_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_retention_policies")),
    )


def downgrade() -> None:
    op.drop_table("retention_policies")
