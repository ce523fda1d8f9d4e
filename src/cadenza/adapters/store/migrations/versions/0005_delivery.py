"""Per-endpoint delivery guarantee; the start of an attempt recorded before it is sent.

Revision ID: 0005
Revises: 0004_sessions
Create Date: 2026-12-07

``endpoints.delivery`` is ``at_least_once`` (what every endpoint did so far) or
``at_most_once``. ``endpoints.lease_started_at`` is set, fenced on the lease, before
a claim's request leaves: when its worker dies, a lease with it set ran an attempt
whose outcome is unknown, one without it never sent anything.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0005"
down_revision = "0004_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column(
            "delivery",
            sa.String(length=16),
            nullable=False,
            server_default=sa.text("'at_least_once'"),
        ),
    )
    op.add_column("endpoints", sa.Column("lease_started_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("lease_started_at")
        batch.drop_column("delivery")
