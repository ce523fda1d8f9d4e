"""The tables of sign-in (migration ``0004_sessions``), on the shared ``metadata``.

``auth_sessions`` holds browser sessions server-side, so that signing out (or an
administrator) ends them; only a keyed digest of each token is kept. ``login_failures``
counts failed sign-ins per account, keyed by a digest of the address, for the
growing delays that slow password guessing.
"""

from __future__ import annotations

import sqlalchemy as sa

from cadenza.adapters.store.tables import UtcDateTime, metadata

auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), nullable=False),
    sa.Column("digest", sa.String(128), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index(None, "user_id"),
    sa.Index(None, "expires_at"),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("account", sa.String(128), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failed_at", UtcDateTime(), nullable=False),
    sa.Index(None, "last_failed_at"),
)
