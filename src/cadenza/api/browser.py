"""The API's sessions as the dashboard's ``SessionGate`` (``cadenza.web.gate``).

The dashboard may not import the API (the two surfaces sit side by side), so the
composition root hands it this adapter over ``cadenza.api.auth``: signing in and
out through the dashboard's forms is the very same as through ``/api/v1/session``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response

from cadenza.actions.identity import Caller, caller_for_user
from cadenza.api.auth import SESSION_COOKIE, Auth, set_session_cookie, sign_in, sign_out
from cadenza.domain import errors


@dataclass(frozen=True, slots=True)
class BrowserSessions:
    """Sessions for browsers: a page needs the session cookie (not an API key)."""

    auth: Auth

    async def caller(self, request: Request) -> Caller:
        if SESSION_COOKIE not in request.cookies:
            raise errors.AuthenticationFailed("Sign in to use the dashboard.")
        return await self.auth.caller(request)

    async def sign_in(
        self, request: Request, response: Response, email: str, password: str
    ) -> Caller:
        user, issued = await sign_in(self.auth, request, email, password)
        set_session_cookie(response, request, issued)
        return caller_for_user(user)

    async def sign_out(self, request: Request, response: Response) -> None:
        await sign_out(self.auth, request, response)
