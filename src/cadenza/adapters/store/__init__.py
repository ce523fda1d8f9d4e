"""Stores: SQLAlchemy Core over SQLite and PostgreSQL, with Alembic migrations."""
