"""Completions fenced on revisions; fewer indexes on runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

``endpoints.revision`` and ``jobs.revision`` count the writes of people, agents and
the planner: a completion whose claimed copies still carry the current revisions
replans them without reading the rows again. Every run recorded inserts into every
index of ``runs`` and checks its foreign key; the index that no list needs on its
own goes (runs by start time page through ``(tenant_id, id)``: ids sort by time), and
so does the key to ``endpoints``, which are archived, never deleted (on PostgreSQL the
check locked the endpoint row for every run). SQLite rebuilds ``runs`` for that.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_DROPPED = (("ix_runs_tenant_id_started_at", ["tenant_id", "started_at"]),)

_RUNS_FK = "fk_runs_endpoint_id_endpoints"


def upgrade() -> None:
    for table in ("endpoints", "jobs"):
        op.add_column(
            table,
            sa.Column("revision", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        )
    for name, _columns in _DROPPED:
        op.drop_index(name, table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(_RUNS_FK, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.create_foreign_key(_RUNS_FK, "endpoints", ["endpoint_id"], ["id"])
    for name, columns in _DROPPED:
        op.create_index(name, "runs", columns, unique=False)
    for table in ("jobs", "endpoints"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("revision")
