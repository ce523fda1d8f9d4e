"""An endpoint keeps its target's last Retry-After.

Revision ID: 0008_retry_after
Revises: 0007_retention
Create Date: 2026-12-07

``endpoints.retry_after_until``: no run of the endpoint before it (issue #16.4).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0008_retry_after"
down_revision = "0007_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("retry_after_until", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("retry_after_until")
