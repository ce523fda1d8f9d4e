"""Server-side sessions and sign-in failures.

Revision ID: 0004_sessions
Revises: 0003
Create Date: 2026-12-05

``auth_sessions`` replaces the signed cookies that could not be revoked: a cookie now
names a row, and signing out deletes it. ``login_failures`` counts failed sign-ins
per account for the growing delays between attempts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0004_sessions"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"])
    op.create_index(op.f("ix_auth_sessions_expires_at"), "auth_sessions", ["expires_at"])
    op.create_table(
        "login_failures",
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_failed_at"), "login_failures", ["last_failed_at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("auth_sessions")
