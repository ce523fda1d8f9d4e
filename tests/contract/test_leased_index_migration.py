"""Migration 0012 keys the index of leased rows on ``lease_until``, and back."""

from __future__ import annotations

import sqlalchemy as sa

from cadenza.adapters.store import migrate
from cadenza.adapters.store.migrate import downgrade, sync_url


def _leased_index(url: str) -> str:
    """The definition of ``ix_endpoints_leased``, lower case, spaces collapsed."""
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = "SELECT sql FROM sqlite_master WHERE name = 'ix_endpoints_leased'"
            else:
                query = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_endpoints_leased'"
            definition = str(conn.execute(sa.text(query)).scalar_one())
    finally:
        engine.dispose()
    return " ".join(definition.lower().replace("(", " ").replace(")", " ").split())


def test_the_index_of_leased_rows_moves_to_lease_until_and_back(blank_sql_url: str) -> None:
    migrate(blank_sql_url, "0011_overlap")
    assert "where lease_owner is not null" in _leased_index(blank_sql_url)

    migrate(blank_sql_url, "0012_leased_index")
    assert "where lease_until is not null" in _leased_index(blank_sql_url)

    downgrade(blank_sql_url, "0011_overlap")
    assert "where lease_owner is not null" in _leased_index(blank_sql_url)
