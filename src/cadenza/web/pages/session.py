"""Signing in and out with e-mail and password, through the HTTP layer's sessions.

Both are plain HTML forms (they work without JavaScript) protected by the CSRF
token. Signing in issues a new CSRF nonce, so a token from before is void; signing
out ends the session through the gate, so the cookie no longer works anywhere.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cadenza.domain import errors
from cadenza.web.core import Dashboard, local_path
from cadenza.web.gate import CSRF_FIELD, set_nonce


async def sign_in_page(dashboard: Dashboard, request: Request) -> Response:
    return _form(dashboard, request, local_path(request.query_params.get("next")), "", "")


def _form(
    dashboard: Dashboard, request: Request, next_url: str, email: str, error: str, status: int = 200
) -> Response:
    token, nonce = dashboard.csrf.token(request)
    data = {"next": next_url, "email": email, "error": error, "csrf": token}
    response = dashboard.templates.response("sign_in.html", {**data, "request": request}, status)
    set_nonce(response, request, nonce)
    return response


async def sign_in(dashboard: Dashboard, request: Request) -> Response:
    form = await request.form()
    next_url = local_path(str(form.get("next") or "/"))
    email = str(form.get("email") or "")
    try:
        dashboard.csrf.check(request, str(form.get(CSRF_FIELD) or ""))
    except errors.PermissionDenied as exc:
        return _form(dashboard, request, next_url, email, exc.message, 403)
    response = RedirectResponse(next_url, status_code=303)
    try:
        await dashboard.gate.sign_in(request, response, email, str(form.get("password") or ""))
    except (errors.AuthenticationFailed, errors.RateLimited) as exc:
        status = 429 if isinstance(exc, errors.RateLimited) else 401
        return _form(dashboard, request, next_url, email, exc.message, status)
    _, nonce = dashboard.csrf.token(request, fresh=True)
    set_nonce(response, request, nonce)
    return response


async def sign_out(dashboard: Dashboard, request: Request) -> Response:
    form = await request.form()
    dashboard.csrf.check(request, str(form.get(CSRF_FIELD) or ""))
    response = RedirectResponse("/sign-in", status_code=303)
    await dashboard.gate.sign_out(request, response)
    return response
