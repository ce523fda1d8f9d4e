"""Browser sessions, kept server-side so that they can be ended.

A session cookie reads ``<session id>.<token>``: the id finds the stored session, the
token (32 random bytes) proves the browser holds it. Only a keyed digest of the whole
value is stored (the sessions key of the ``Keyring``), so the table cannot be replayed
as cookies. A session ends when it is signed out (its row is deleted), when it expires
``SESSION_LIFETIME`` after sign-in, or when the secret that keyed its digest is
neither the current nor a listed previous server secret.

A malformed cookie is refused before the store is asked, so no odd byte reaches it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cadenza.actions.base import Services
from cadenza.domain import errors
from cadenza.domain.identity import User
from cadenza.ids import new_id
from cadenza.keyring import Match, Purpose
from cadenza.ports import AuthStore, StoredSession

SESSION_LIFETIME = timedelta(days=7)
_TOKEN_BYTES = 32
_COOKIE = re.compile(r"ses_[0-9a-hjkmnp-tv-z]{26}\.[A-Za-z0-9_-]{43}")
_ENDED = "The session ended or expired; sign in again."


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: ``cookie`` is given to the browser once and never stored."""

    cookie: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime

    @property
    def max_age_seconds(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())


def auth_store(services: Services) -> AuthStore:
    if services.auth_store is None:
        raise RuntimeError("Sessions need an auth store; the composition root gives one.")
    return services.auth_store


async def start_session(services: Services, user: User) -> IssuedSession:
    """Store a new session for ``user``."""
    store = auth_store(services)
    now = services.clock.now()
    session_id = new_id("ses", now)
    cookie = f"{session_id}.{secrets.token_urlsafe(_TOKEN_BYTES)}"
    digest = services.keyring.digest(Purpose.SESSIONS, cookie)
    expires_at = now + SESSION_LIFETIME
    await store.insert_session(StoredSession(session_id, user.id, digest, now, expires_at))
    return IssuedSession(cookie, now, expires_at)


async def session_user(services: Services, cookie: str) -> User:
    """The user signed in with ``cookie``; ``AuthenticationFailed`` when the cookie
    is malformed, or its session was ended, has expired or belongs to no user."""
    session = await _valid_session(services, cookie, services.clock.now())
    if session is None:
        raise errors.AuthenticationFailed(_ENDED)
    try:
        async with services.store.transaction(readonly=True) as tx:
            return await tx.get_user(session.user_id)
    except errors.UserNotFound:
        raise errors.AuthenticationFailed("The session's user no longer exists.") from None


async def end_session(services: Services, cookie: str) -> bool:
    """End the session of ``cookie``; whether there was one. Only the holder of the
    whole cookie can end it: ids are not secrets."""
    session = await _valid_session(services, cookie, services.clock.now())
    if session is None:
        return False
    return await auth_store(services).delete_session(session.id)


async def end_user_sessions(services: Services, user_id: str) -> int:
    """End every session of ``user_id`` (e.g. after a password change); how many."""
    return await auth_store(services).delete_user_sessions(user_id)


async def _valid_session(services: Services, cookie: str, now: datetime) -> StoredSession | None:
    if not _COOKIE.fullmatch(cookie):
        return None
    session = await auth_store(services).get_session(cookie.partition(".")[0])
    if session is None or session.expires_at <= now:
        return None
    if services.keyring.check(Purpose.SESSIONS, cookie, session.digest) is Match.NONE:
        return None
    return session
