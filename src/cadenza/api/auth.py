"""Who is calling: API keys (``Authorization: Bearer cdz_…``) or a session cookie.

Sessions are stateless signed cookies: ``<user id>.<expiry unix>.<HMAC-SHA256>``
keyed with the server secret, ``HttpOnly`` and ``SameSite=Strict``. Signing out
clears the cookie; rotating the server secret ends every session. Requests that
change state with a cookie must come from the same origin (an ``Origin`` header,
when sent, must match the host), a second line of defence after ``SameSite``.

Rate limiting is a token bucket per caller (API key id or user id) held in this
process's memory: ``rate_limit_per_minute`` tokens, refilled continuously.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from pydantic import Field

from cadenza.actions.base import Context, Services
from cadenza.actions.identity import (
    Caller,
    authenticate_key,
    authenticate_password,
    caller_for_key,
    caller_for_user,
)
from cadenza.actions.meta import WhoAmIOut
from cadenza.actions.wire import ActorOut, Input
from cadenza.domain import errors
from cadenza.ports import Clock

SESSION_COOKIE = "cadenza_session"
SESSION_LIFETIME = timedelta(days=7)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def sign_session(secret: bytes, user_id: str, expires: datetime) -> str:
    stamp = str(int(expires.timestamp()))
    mac = hmac.new(secret, f"session|{user_id}|{stamp}".encode(), hashlib.sha256).hexdigest()
    return f"{user_id}.{stamp}.{mac}"


def read_session(secret: bytes, value: str, now: datetime) -> str | None:
    """The user id in a valid, unexpired session cookie, else ``None``."""
    user_id, _, rest = value.partition(".")
    stamp, _, mac = rest.partition(".")
    if not stamp.isdigit():
        return None
    good = hmac.new(secret, f"session|{user_id}|{stamp}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, mac) or int(stamp) <= now.timestamp():
        return None
    return user_id


class TokenBuckets:
    """Per-caller token buckets; ``take`` raises ``RateLimited`` when one is empty."""

    def __init__(self, per_minute: int, clock: Clock, max_callers: int = 100_000) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> None:
        now = self.clock.monotonic()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise errors.RateLimited(
                "Too many requests for this caller; retry later.", (1.0 - tokens) / self.rate
            )
        if len(self._buckets) >= self.max_callers and key not in self._buckets:
            self._buckets.clear()  # memory bound: forgetting buckets only grants tokens
        self._buckets[key] = (tokens - 1.0, now)


@dataclass(frozen=True, slots=True)
class Auth:
    """What the HTTP layer needs to authenticate requests."""

    services: Services
    limiter: TokenBuckets

    async def caller(self, request: Request) -> Caller:
        """Authenticate the request and charge the caller's rate bucket."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and scheme.lower() == "bearer" and token.strip():
            caller = await self._key_caller(token.strip())
        elif SESSION_COOKIE in request.cookies:
            caller = await self._session_caller(request)
        else:
            raise errors.AuthenticationFailed(
                "Send an API key as 'Authorization: Bearer cdz_…' or sign in."
            )
        self.limiter.take(caller.actor.id)
        return caller

    async def _key_caller(self, token: str) -> Caller:
        s = self.services
        key = await authenticate_key(s.store, s.clock, s.secret_key, token, s.key_cache)
        return caller_for_key(key)

    async def _session_caller(self, request: Request) -> Caller:
        s = self.services
        user_id = read_session(s.secret_key, request.cookies[SESSION_COOKIE], s.clock.now())
        if user_id is None:
            raise errors.AuthenticationFailed("The session expired; sign in again.")
        if request.method not in _SAFE_METHODS and not _same_origin(request):
            raise errors.PermissionDenied("Cross-origin requests cannot use the session.")
        try:
            async with s.store.transaction(readonly=True) as tx:
                user = await tx.get_user(user_id)
        except errors.UserNotFound:
            raise errors.AuthenticationFailed("The session's user no longer exists.") from None
        return caller_for_user(user)

    async def context(self, request: Request) -> Context:
        caller = await self.caller(request)
        return Context.for_caller(self.services, caller.tenant_id, caller.actor, caller.scopes)

    async def sign_in(
        self, request: Request, response: Response, email: str, password: str
    ) -> Caller:
        """Check the password (rate-limited per client address) and set the session
        cookie on ``response``; ``AuthenticationFailed`` when they do not match."""
        s = self.services
        self.limiter.take(f"login:{request.client.host if request.client else '?'}")
        user = await authenticate_password(s.store, email, password)
        expires = s.clock.now() + SESSION_LIFETIME
        response.set_cookie(
            SESSION_COOKIE,
            sign_session(s.secret_key, user.id, expires),
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return caller_for_user(user)

    async def sign_out(self, request: Request, response: Response) -> None:
        """End the request's session: the cookie is cleared on ``response``."""
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


class SessionInput(Input):
    email: str = Field(max_length=254, examples=["ada@example.com"])
    password: str = Field(max_length=1024)


def add_session_routes(router: APIRouter, prefix: str, auth: Auth) -> None:
    """``POST …/session`` signs in (sets the cookie); ``DELETE …/session`` signs out."""

    @router.post(
        f"{prefix}/session",
        response_model=WhoAmIOut,
        summary="Sign in (dashboard session)",
        tags=["session"],
    )
    async def sign_in(body: SessionInput, request: Request, response: Response) -> WhoAmIOut:
        caller = await auth.sign_in(request, response, body.email, body.password)
        return WhoAmIOut(
            tenant_id=caller.tenant_id,
            actor=ActorOut.of(caller.actor),
            scopes=sorted(caller.scopes),
        )

    @router.delete(f"{prefix}/session", status_code=204, summary="Sign out", tags=["session"])
    async def sign_out(request: Request, response: Response) -> Response:
        await auth.sign_out(request, response)
        response.status_code = 204
        return response
