"""``SqlAuthStore``: ``cadenza.ports.AuthStore`` over the SQL store's engine.

It shares the engine (pool, SQLite's ``BEGIN IMMEDIATE`` setup) of ``SqlStore``, like
the planner's store; each method is one short transaction. Counting a failed sign-in
is one ``INSERT … ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL both have it), so
concurrent failures are all counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cadenza.adapters.store.auth_tables import auth_sessions, login_failures
from cadenza.domain import errors
from cadenza.ports import LoginFailures, StoredSession

_S = auth_sessions.c
_F = login_failures.c


class SqlAuthStore:
    """See the module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    async def _run(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        async with self._tx() as conn:
            return await conn.execute(statement)

    # Sessions -----------------------------------------------------------------

    async def insert_session(self, session: StoredSession) -> None:
        row = {
            "id": session.id,
            "user_id": session.user_id,
            "digest": session.digest,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
        }
        try:
            await self._run(auth_sessions.insert().values(**row))
        except IntegrityError as exc:
            raise errors.Conflict(f"A session with id {session.id!r} exists.") from exc

    async def get_session(self, session_id: str) -> StoredSession | None:
        query = sa.select(auth_sessions).where(_S.id == session_id)
        row = (await self._run(query)).first()
        if row is None:
            return None
        return StoredSession(row.id, row.user_id, row.digest, row.created_at, row.expires_at)

    async def delete_session(self, session_id: str) -> bool:
        result = await self._run(auth_sessions.delete().where(_S.id == session_id))
        return result.rowcount > 0

    async def delete_user_sessions(self, user_id: str) -> int:
        result = await self._run(auth_sessions.delete().where(_S.user_id == user_id))
        return result.rowcount

    # Sign-in failures -----------------------------------------------------------

    async def login_failures(self, account: str) -> LoginFailures | None:
        query = sa.select(login_failures).where(_F.account == account)
        row = (await self._run(query)).first()
        return None if row is None else LoginFailures(row.account, row.failures, row.last_failed_at)

    async def add_login_failure(
        self, account: str, at: datetime, *, forget_before: datetime
    ) -> LoginFailures:
        insert = self._insert(login_failures).values(account=account, failures=1, last_failed_at=at)
        counted = sa.case((_F.last_failed_at < forget_before, 1), else_=_F.failures + 1)
        statement = insert.on_conflict_do_update(
            index_elements=[_F.account],
            set_={"failures": counted, "last_failed_at": insert.excluded.last_failed_at},
        ).returning(_F.failures)
        count = (await self._run(statement)).scalar_one()
        return LoginFailures(account, int(count), at)

    async def clear_login_failures(self, account: str) -> None:
        await self._run(login_failures.delete().where(_F.account == account))

    async def purge(self, now: datetime, *, failures_before: datetime) -> None:
        async with self._tx() as conn:
            await conn.execute(auth_sessions.delete().where(_S.expires_at <= now))
            await conn.execute(login_failures.delete().where(_F.last_failed_at < failures_before))
