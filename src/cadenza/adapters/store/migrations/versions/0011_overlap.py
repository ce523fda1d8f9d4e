"""Overlap policy per endpoint, and the runs in flight of ``overlap=allow`` ones.

Revision ID: 0011_overlap
Revises: 0010_oneshots
Create Date: 2026-12-08

``endpoints.overlap`` (``skip``, every existing endpoint's behaviour, or ``allow``)
and ``max_in_flight`` (1 for skip); the store's own ``in_flight`` count and
``outcome_for`` slot; the ``flights`` table, one row per run of an ``allow``
endpoint in flight (issue #16, capability 4).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0011_overlap"
down_revision = "0010_oneshots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(
            sa.Column("overlap", sa.String(8), nullable=False, server_default=sa.text("'skip'"))
        )
        batch.add_column(
            sa.Column("max_in_flight", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(
            sa.Column("in_flight", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("outcome_for", UtcDateTime(), nullable=True))
    op.create_table(
        "flights",
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("until", UtcDateTime(), nullable=False),
        sa.Column("scheduled_for", UtcDateTime(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", "epoch", name="pk_flights"),
    )
    op.create_index("ix_flights_until", "flights", ["until"])
    op.create_index("ix_flights_owner", "flights", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_flights_owner", "flights")
    op.drop_index("ix_flights_until", "flights")
    op.drop_table("flights")
    with op.batch_alter_table("endpoints") as batch:
        for column in ("outcome_for", "in_flight", "max_in_flight", "overlap"):
            batch.drop_column(column)
