"""Stores: SQLAlchemy Core over SQLite and PostgreSQL, with Alembic migrations.

``migrate(url)`` creates or upgrades the schema; ``open_store(url, secret_box)``
connects to it. Both take ``sqlite+aiosqlite:///path`` or
``postgresql+psycopg://user@host/db`` URLs.
"""

# Importing these registers their tables on the shared metadata (migrations 0002, 0004).
from cadenza.adapters.store import auth_tables as auth_tables
from cadenza.adapters.store import planner_tables as planner_tables
from cadenza.adapters.store.engines import open_store
from cadenza.adapters.store.sql import CHANNEL, SqlStore


def migrate(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema at ``url`` (see ``migrate.migrate``)."""
    # Imported on use: Alembic costs ~11 MB of resident memory that a long-running
    # worker never needs.
    from cadenza.adapters.store.migrate import migrate as run_migrations

    run_migrations(url, revision)


__all__ = ["CHANNEL", "SqlStore", "migrate", "open_store"]
