"""Stores: SQLAlchemy Core over SQLite and PostgreSQL, with Alembic migrations.

``migrate(url)`` creates or upgrades the schema; ``open_store(url, secret_box)``
connects to it. Both take ``sqlite+aiosqlite:///path`` or
``postgresql+psycopg://user@host/db`` URLs (or the same without the driver).

The modules, shared first: ``tables`` (the schema), ``documents`` and ``codec``
(entities to rows), ``dialect`` (what a database must provide), ``tx`` and ``sql``
(the units of work, ``SqlStore``), ``scheduling`` (the claim and the completion);
then one module per database, ``sqlite`` and ``postgres``. The stores beside
``SqlStore`` on its engine: ``planner_sql``, and ``auth_sql`` (with ``auth_tables``),
``notify_sql`` (with ``notify_tables``).
"""

# Importing the sign-in tables registers them on the shared metadata (migration 0004).
from cadenza.adapters.store import auth_tables as auth_tables

# And the notification tables (migration 0006).
from cadenza.adapters.store import notify_tables as notify_tables
from cadenza.adapters.store.migrate import async_url
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.adapters.store.postgres import CHANNEL, PostgresDatabase
from cadenza.adapters.store.sql import SqlStore
from cadenza.adapters.store.sqlite import SqliteDatabase
from cadenza.ports import SecretBox


async def open_store(url: str, secret_box: SecretBox) -> SqlStore:
    """Connect to a migrated database (``sqlite+aiosqlite:///…`` or ``postgresql+psycopg://…``)."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        return SqlStore(SqliteDatabase(target), secret_box)
    return SqlStore(PostgresDatabase(target), secret_box)


def migrate(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema at ``url`` (see ``migrate.migrate``)."""
    # Imported on use: Alembic costs ~11 MB of resident memory that a long-running
    # worker never needs.
    from cadenza.adapters.store.migrate import migrate as run_migrations

    run_migrations(url, revision)


__all__ = ["CHANNEL", "SqlPlannerStore", "SqlStore", "migrate", "open_store"]
