"""Who is calling: API keys (``Authorization: Bearer cdz_…``) or a session cookie.

Sessions live server-side (``cadenza.actions.sessions``): the ``cadenza_session``
cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over HTTPS) names a stored
session, signing out deletes it, and a cookie whose session ended or expired is
refused. Requests that change state with a cookie must come from the same origin (an
``Origin`` header, when sent, must match the host), a second line of defence after
``SameSite``.

Signing in (``sign_in``, shared with the dashboard) is limited per client address by
the rate buckets and per account by ``cadenza.actions.signin``.

Rate limiting is a token bucket per caller (API key id or user id) held in this
process's memory: ``rate_limit_per_minute`` tokens, refilled continuously.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from pydantic import Field

from cadenza.actions.base import Context, Services
from cadenza.actions.identity import Caller, authenticate_key, caller_for_key, caller_for_user
from cadenza.actions.meta import WhoAmIOut
from cadenza.actions.sessions import IssuedSession, end_session, session_user
from cadenza.actions.signin import sign_in as sign_in_account
from cadenza.actions.wire import ActorOut, Input
from cadenza.domain import errors
from cadenza.domain.identity import User
from cadenza.ports import Clock

SESSION_COOKIE = "cadenza_session"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        key = await authenticate_key(s.store, s.clock, s.keyring, token, s.key_cache)
        return caller_for_key(key)

    async def _session_caller(self, request: Request) -> Caller:
        user = await session_user(self.services, request.cookies[SESSION_COOKIE])
        if request.method not in _SAFE_METHODS and not _same_origin(request):
            raise errors.PermissionDenied("Cross-origin requests cannot use the session.")
        return caller_for_user(user)

    async def context(self, request: Request) -> Context:
        caller = await self.caller(request)
        return Context.for_caller(self.services, caller.tenant_id, caller.actor, caller.scopes)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def sign_in(
    auth: Auth, request: Request, email: str, password: str
) -> tuple[User, IssuedSession]:
    """Check an e-mail and password and start a session; the caller sets the cookie
    (``set_session_cookie``). Limited per client address and per account."""
    client = request.client.host if request.client else "?"
    auth.limiter.take(f"login:{client}")
    return await sign_in_account(auth.services, email, password)


async def sign_out(auth: Auth, request: Request, response: Response) -> None:
    """End the request's session on the server and clear its cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is not None:
        await end_session(auth.services, cookie)
    clear_session_cookie(response)


def set_session_cookie(response: Response, request: Request, issued: IssuedSession) -> None:
    """Give the browser its session cookie: script-proof, same-site only, and sent
    over HTTPS only when the request came over HTTPS."""
    response.set_cookie(
        SESSION_COOKIE,
        issued.cookie,
        max_age=issued.max_age_seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


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
        operation_id="sign_in",
    )
    async def sign_in_route(body: SessionInput, request: Request, response: Response) -> WhoAmIOut:
        user, issued = await sign_in(auth, request, body.email, body.password)
        set_session_cookie(response, request, issued)
        caller = caller_for_user(user)
        return WhoAmIOut(
            tenant_id=caller.tenant_id,
            actor=ActorOut.of(caller.actor),
            scopes=sorted(caller.scopes),
        )

    @router.delete(
        f"{prefix}/session",
        status_code=204,
        summary="Sign out",
        tags=["session"],
        operation_id="sign_out",
    )
    async def sign_out_route(request: Request, response: Response) -> Response:
        await sign_out(auth, request, response)
        response.status_code = 204
        return response
