"""The initial schema: users, API keys, jobs, endpoints, runs, audit, planner, workers.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Timestamps use ``UtcDateTime`` (timestamptz on PostgreSQL, epoch microseconds on
SQLite); the type is imported rather than restated so both stay in step.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cadenza.adapters.store.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id_id"), "api_keys", ["tenant_id", "id"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=200), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        op.f("ix_audit_events_tenant_id_actor_id_id"),
        "audit_events",
        ["tenant_id", "actor_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_audit_events_tenant_id_id"), "audit_events", ["tenant_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_audit_events_tenant_id_target_id_id"),
        "audit_events",
        ["tenant_id", "target_id", "id"],
        unique=False,
    )

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("pause", sa.Text(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_until", UtcDateTime(), nullable=True),
        sa.Column("planner_enabled", sa.Boolean(), nullable=False),
        sa.Column("archived_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_tenant_id_id"), "jobs", ["tenant_id", "id"], unique=False)

    op.create_table(
        "planner_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("endpoint_id", sa.String(length=40), nullable=True),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("transcript", sa.Text(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planner_sessions")),
    )
    op.create_index(
        op.f("ix_planner_sessions_endpoint_id_id"),
        "planner_sessions",
        ["endpoint_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_planner_sessions_tenant_id_started_at"),
        "planner_sessions",
        ["tenant_id", "started_at"],
        unique=False,
    )

    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("baseline", sa.Text(), nullable=False),
        sa.Column("guardrails", sa.Text(), nullable=False),
        sa.Column("catch_up", sa.String(length=16), nullable=False),
        sa.Column("jitter_us", sa.BigInteger(), nullable=False),
        sa.Column("planner_enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_hint", sa.Text(), nullable=True),
        sa.Column("one_shot", sa.Text(), nullable=True),
        sa.Column("pause", sa.Text(), nullable=True),
        sa.Column("archived_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("next_run_at", UtcDateTime(), nullable=True),
        sa.Column("next_run_source", sa.String(length=32), nullable=True),
        sa.Column("last_run_at", UtcDateTime(), nullable=True),
        sa.Column("last_scheduled_for", UtcDateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("success_streak", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_budget_us", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("lease_epoch", sa.BigInteger(), nullable=False),
        sa.Column("lease_slot", UtcDateTime(), nullable=True),
        sa.Column("lease_claimed_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_endpoints_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
    )
    op.create_index(
        "ix_endpoints_due",
        "endpoints",
        ["next_run_at"],
        unique=False,
        sqlite_where=sa.text("lease_owner IS NULL AND next_run_at IS NOT NULL"),
        postgresql_where=sa.text("lease_owner IS NULL AND next_run_at IS NOT NULL"),
    )
    op.create_index(op.f("ix_endpoints_job_id_id"), "endpoints", ["job_id", "id"], unique=False)
    op.create_index(
        "ix_endpoints_leased",
        "endpoints",
        ["lease_until"],
        unique=False,
        sqlite_where=sa.text("lease_owner IS NOT NULL"),
        postgresql_where=sa.text("lease_owner IS NOT NULL"),
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("scheduled_for", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("missed_slots", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_meta", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["endpoints.id"], name=op.f("fk_runs_endpoint_id_endpoints")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint(
            "endpoint_id",
            "scheduled_for",
            "attempt",
            name=op.f("uq_runs_endpoint_id_scheduled_for_attempt"),
        ),
    )
    op.create_index(op.f("ix_runs_endpoint_id_id"), "runs", ["endpoint_id", "id"], unique=False)
    op.create_index(op.f("ix_runs_job_id_id"), "runs", ["job_id", "id"], unique=False)
    op.create_index(op.f("ix_runs_tenant_id_id"), "runs", ["tenant_id", "id"], unique=False)
    op.create_index(
        op.f("ix_runs_tenant_id_started_at"), "runs", ["tenant_id", "started_at"], unique=False
    )
    op.create_index(
        op.f("ix_runs_tenant_id_status_id"), "runs", ["tenant_id", "status", "id"], unique=False
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children go before their parents.
    for table in (
        "runs",
        "endpoints",
        "jobs",
        "workers",
        "users",
        "planner_sessions",
        "audit_events",
        "api_keys",
    ):
        op.drop_table(table)
