"""Which failures count as the database being away (a 503 on every surface, a
completion kept for later) and which are bugs or bad data (not retried as such)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
import sqlalchemy.exc

from cadenza.ports import is_store_outage


def _wrapped(orig: Exception) -> sqlalchemy.exc.StatementError:
    return sqlalchemy.exc.DBAPIError.instance("SELECT 1", {}, orig, sqlite3.Error)


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("database or disk is full"),
        psycopg.OperationalError("connection refused"),
        psycopg.InterfaceError("the connection is closed"),
        _wrapped(sqlite3.OperationalError("database is locked")),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_driver_errors_of_an_unavailable_database_are_outages(exc: Exception) -> None:
    assert is_store_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        psycopg.errors.UniqueViolation("duplicate key"),
        _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")),
        ValueError("a bug"),
        KeyError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bugs_and_refused_data_are_not_outages(exc: Exception) -> None:
    assert not is_store_outage(exc)
