"""``MemoryAuthStore``: the fake of ``ports.AuthStore``, with the SQL store's semantics.

Every method finishes without awaiting anything in between, so each is atomic in one
event loop, as each is one statement (or one transaction) in SQL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from cadenza.domain import errors
from cadenza.ports import LoginFailures, StoredSession


class MemoryAuthStore:
    """Sessions and sign-in failures in dictionaries."""

    def __init__(self) -> None:
        self._sessions: dict[str, StoredSession] = {}
        self._failures: dict[str, LoginFailures] = {}

    async def insert_session(self, session: StoredSession) -> None:
        if session.id in self._sessions:
            raise errors.Conflict(f"A session with id {session.id!r} exists.")
        self._sessions[session.id] = session

    async def get_session(self, session_id: str) -> StoredSession | None:
        return self._sessions.get(session_id)

    async def delete_session(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def delete_user_sessions(self, user_id: str) -> int:
        ended = [s.id for s in self._sessions.values() if s.user_id == user_id]
        for session_id in ended:
            del self._sessions[session_id]
        return len(ended)

    async def login_failures(self, account: str) -> LoginFailures | None:
        return self._failures.get(account)

    async def add_login_failure(
        self, account: str, at: datetime, *, forget_before: datetime
    ) -> LoginFailures:
        known = self._failures.get(account)
        if known is None or known.last_failed_at < forget_before:
            counted = LoginFailures(account, 1, at)
        else:
            counted = replace(known, count=known.count + 1, last_failed_at=at)
        self._failures[account] = counted
        return counted

    async def clear_login_failures(self, account: str) -> None:
        self._failures.pop(account, None)

    async def purge(self, now: datetime, *, failures_before: datetime) -> None:
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_at > now}
        self._failures = {
            k: f for k, f in self._failures.items() if f.last_failed_at >= failures_before
        }
