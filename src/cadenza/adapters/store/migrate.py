"""Schema migrations: ``migrate(url)`` upgrades a database to the newest revision,
``downgrade(url, revision)`` takes it back.

The Alembic scripts ship inside the package (``migrations/``), so an installed
Cadenza migrates without an ``alembic.ini`` or a source checkout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

_SYNC_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "psycopg"}


def _with_driver(url: str | sa.URL, drivers: dict[str, str]) -> sa.URL:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"Unsupported database URL {url!r}: use SQLite or PostgreSQL.")
    return parsed.set(drivername=f"{backend}+{drivers[backend]}")


def sync_url(url: str | sa.URL) -> sa.URL:
    """The same database through a synchronous driver (Alembic runs synchronously)."""
    return _with_driver(url, _SYNC_DRIVERS)


def async_url(url: str | sa.URL) -> sa.URL:
    """The same database through the driver the store uses (aiosqlite or psycopg 3).

    So ``sqlite:///cadenza.db`` and ``postgresql://…`` work as well as the explicit
    ``sqlite+aiosqlite`` and ``postgresql+psycopg`` forms.
    """
    return _with_driver(url, _ASYNC_DRIVERS)


def alembic_config(url: str) -> Config:
    # Imported here, not at the top: a worker or API process never migrates, and
    # Alembic with Mako is ~11 MB of resident memory (sql.py needs only ``async_url``).
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Percent signs in passwords would otherwise be read as interpolation.
    rendered = sync_url(url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (async or sync driver URL) to ``revision``."""
    _alembic(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision``, in one transaction."""
    _alembic(url, "downgrade", revision)


def _alembic(url: str, direction: Literal["upgrade", "downgrade"], revision: str) -> None:
    from alembic import command  # see alembic_config

    config = alembic_config(url)
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, direction)(config, revision)
    finally:
        engine.dispose()
