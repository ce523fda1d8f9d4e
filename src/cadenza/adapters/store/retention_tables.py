"""The table of retention policies (migration ``0007_retention``), on the shared
``metadata``: one row per tenant that has a policy; a limit left NULL keeps forever."""

from __future__ import annotations

import sqlalchemy as sa

from cadenza.adapters.store.tables import UtcDateTime, metadata

retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column("tenant_id", sa.String(40), primary_key=True),
    sa.Column("run_days", sa.Integer),
    sa.Column("runs_per_endpoint", sa.Integer),
    sa.Column("audit_days", sa.Integer),
    sa.Column("updated_at", UtcDateTime()),
)
