"""The index of leased endpoints keys its rows on ``lease_until``, not ``lease_owner``.

Revision ID: 0012_leased_index
Revises: 0011_overlap
Create Date: 2026-12-08

``ix_endpoints_leased`` held the rows ``WHERE lease_owner IS NOT NULL``. Every
fenced statement (``id = … AND lease_owner = … AND lease_epoch = …``: a lease's
renewal, release, start mark) implies that predicate, so PostgreSQL could answer it
from this index instead of the primary key, and did whenever its statistics said
few leases were held (a fresh table, or one analysed while idle): each such
statement then read every lease held, so renewing N leases cost N² row visits
(9 ms a row with 10,000 held). A lease sets and clears ``lease_until`` with
``lease_owner``, so the same rows are kept under a predicate that the fenced
statements do not imply: they go by the primary key, whatever the statistics.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_leased_index"
down_revision = "0011_overlap"
branch_labels = None
depends_on = None


def _leased_index(predicate: str) -> None:
    op.drop_index("ix_endpoints_leased", "endpoints")
    op.create_index(
        "ix_endpoints_leased",
        "endpoints",
        ["lease_until"],
        unique=False,
        sqlite_where=sa.text(predicate),
        postgresql_where=sa.text(predicate),
    )


def upgrade() -> None:
    _leased_index("lease_until IS NOT NULL")


def downgrade() -> None:
    _leased_index("lease_owner IS NOT NULL")
