"""A run counts the HTTP requests it made.

Revision ID: 0009_http_attempts
Revises: 0008_retry_after
Create Date: 2026-12-07

``runs.http_attempts``: requests made within the run, in-run retries included
(issue #16.6). ``runs.attempt`` keeps numbering the slot's tries: it is part of the
key by which a late result replaces a swept ``lost`` record. Runs recorded before
this revision read 0 (not counted).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_http_attempts"
down_revision = "0008_retry_after"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("http_attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("http_attempts")
