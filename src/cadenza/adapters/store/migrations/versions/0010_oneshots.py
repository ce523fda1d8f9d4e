"""Several pending one-shots per endpoint.

Revision ID: 0010_oneshots
Revises: 0009_http_attempts
Create Date: 2026-12-08

``endpoints.one_shot`` (one JSON array ``[run_at, expires_at, reason, actor(, true)]``)
becomes ``endpoints.one_shots``, a JSON list of such arrays each led by its id
(issue #16, missing capability 3). A stored one-shot is carried over as a queue of
one, with a new id; an endpoint without one keeps NULL. The rename is a plain
``ALTER TABLE … RENAME COLUMN`` on both backends (SQLite 3.25+), so the table and
its partial indexes are not rebuilt.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010_oneshots"
down_revision = "0009_http_attempts"
branch_labels = None
depends_on = None

_ENDPOINTS = sa.table("endpoints", sa.column("id", sa.String), sa.column("one_shots", sa.Text))


def _carried_id() -> str:
    # The shape of ``cadenza.ids`` ids (prefix, 26 base32 characters), without
    # importing application code into a migration.
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "osh_" + "".join(secrets.choice(alphabet) for _ in range(26))


def _rewrite(convert: Callable[[Any], Any]) -> None:
    """Every stored one-shot document through ``convert``."""
    conn = op.get_bind()
    column = _ENDPOINTS.c.one_shots
    rows = conn.execute(sa.select(_ENDPOINTS.c.id, column).where(column.is_not(None))).all()
    for endpoint_id, text in rows:
        value = json.dumps(convert(json.loads(text)), separators=(",", ":"), ensure_ascii=False)
        conn.execute(
            _ENDPOINTS.update().where(_ENDPOINTS.c.id == endpoint_id).values(one_shots=value)
        )


def upgrade() -> None:
    op.execute("ALTER TABLE endpoints RENAME COLUMN one_shot TO one_shots")
    _rewrite(lambda shot: [[_carried_id(), *shot]])


def downgrade() -> None:
    # Keeps the first queued one-shot of each endpoint: a downgrade loses the rest.
    _rewrite(lambda queue: queue[0][1:])
    op.execute("ALTER TABLE endpoints RENAME COLUMN one_shots TO one_shot")
