"""Who is looking at a page: the HTTP layer's sessions, and CSRF tokens for forms.

The dashboard keeps no sessions of its own. The composition root hands it the API's
session mechanism as a ``SessionGate`` (``cadenza.api.browser.BrowserSessions``), so
signing in here and through ``POST /api/v1/session`` are the same thing, and
signing out ends the session on the server, wherever it is checked.

CSRF: every form and every htmx request carries a token; changes are refused
without it. The token is an HMAC of a random nonce kept in an ``HttpOnly``,
``SameSite=Strict`` cookie (a signed double-submit), keyed with the server's
sessions key (``cadenza.keyring``; tokens made before a secret rotation still
verify while the old secret does): another site can neither read the token nor set
the cookie. A new nonce is issued at sign-in, so a token seen
before signing in is worthless after. This is in addition to the session cookie's
own ``SameSite=Strict`` and the API's same-origin check on unsafe methods.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from cadenza.actions.identity import Caller
from cadenza.domain import errors
from cadenza.keyring import Keyring, Match, Purpose

CSRF_COOKIE = "cadenza_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSRF_MESSAGE = "dashboard-csrf|"
"""Sets the tokens' messages apart from everything else signed with the sessions key."""


class SessionGate(Protocol):
    """The HTTP layer's sessions, as the dashboard uses them."""

    async def caller(self, request: Request) -> Caller:
        """The signed-in caller of ``request``; ``AuthenticationFailed`` otherwise."""
        ...

    async def sign_in(
        self, request: Request, response: Response, email: str, password: str
    ) -> Caller:
        """Start a session (its cookie goes on ``response``) or raise
        ``AuthenticationFailed``; may raise ``RateLimited``."""
        ...

    async def sign_out(self, request: Request, response: Response) -> None:
        """End the request's session."""
        ...


class Csrf:
    """Signed double-submit tokens (module docstring)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def _sign(self, nonce: str) -> str:
        return self._keyring.digest(Purpose.SESSIONS, _CSRF_MESSAGE + nonce)

    def token(self, request: Request, *, fresh: bool = False) -> tuple[str, str | None]:
        """The token for this request's forms, and a new nonce to set as the cookie
        when the request had none (or ``fresh`` asks for a new one)."""
        nonce = None if fresh else request.cookies.get(CSRF_COOKIE)
        if nonce and len(nonce) <= 64:
            return self._sign(nonce), None
        nonce = secrets.token_urlsafe(24)
        return self._sign(nonce), nonce

    def check(self, request: Request, submitted: str | None) -> None:
        """Refuse a change whose token does not match the request's nonce cookie."""
        nonce = request.cookies.get(CSRF_COOKIE, "")
        given = submitted or request.headers.get(CSRF_HEADER, "")
        valid = bool(nonce and given) and (
            self._keyring.check(Purpose.SESSIONS, _CSRF_MESSAGE + nonce, given) is not Match.NONE
        )
        if not valid:
            raise errors.PermissionDenied(
                "The form is out of date or was not sent by this dashboard; reload the page "
                "and try again."
            )


def set_nonce(response: Response, request: Request, nonce: str | None) -> None:
    if nonce is not None:
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
