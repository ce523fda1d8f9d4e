"""``RequestGate``: what every request passes before a route sees it (plain ASGI).

* **Authentication first.** A request under the API prefix that carries a body (bar
  the public routes: signing in and out) is authenticated from its headers before a
  byte of the body is read; one that fails is answered at once (401, 403, 429, 503).
  The caller is left in the scope, so the route does not authenticate again
  (``auth.Auth.caller``). A request without a body is left to its route, which
  authenticates it as always (and an unknown route or method stays a 404 or 405).
* **Bodies are capped** at ``max_body_bytes``: a declared ``Content-Length`` above the
  cap is answered 413 unread; a body that turns out longer is cut off at the cap.
* **JSON bodies of API requests may not repeat a key** in one object: parsers keep
  the last value silently, so ``{"name": "a", "name": "b"}`` meant something nobody
  can know. It is a 422 naming the key.

Other paths (MCP, the dashboard) authenticate themselves before reading a body; the
gate only caps what they read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cadenza.api.auth import CALLER_SCOPE_KEY, Auth
from cadenza.api.errors import cadenza_error_handler
from cadenza.domain import errors

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class RequestGate:
    """See the module docstring. ``public`` lists (method, path) pairs that need no
    credentials; everything else under ``api_prefix`` does."""

    def __init__(
        self,
        app: ASGIApp,
        auth: Auth,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        api_prefix: str = "/api/",
        public: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.app = app
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.api_prefix = api_prefix
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            inner_receive = await self._admit(scope, request, receive)
        except errors.CadenzaError as exc:
            response = await cadenza_error_handler(request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, inner_receive, send)

    async def _admit(self, scope: Scope, request: Request, receive: Receive) -> Receive:
        """Authenticate and check the body as the module docstring says; the receive
        channel the app reads the body from."""
        path = str(scope.get("path", ""))
        headers = Headers(scope=scope)
        declared = _content_length(headers)
        has_body = bool(declared) or "transfer-encoding" in headers
        if not path.startswith(self.api_prefix):
            self._refuse_declared(declared)
            return self._capped(receive)
        if not has_body:
            return receive  # nothing to read: the route authenticates as always
        if (scope["method"], path.rstrip("/")) not in self.public:
            scope[CALLER_SCOPE_KEY] = await self.auth.caller(request)
        self._refuse_declared(declared)
        body = await self._read_body(receive)
        if body and _is_json(headers.get("content-type", "")):
            refuse_duplicate_keys(body)
        return _replay(body, receive)

    def _refuse_declared(self, declared: int | None) -> None:
        if declared is not None and declared > self.max_body_bytes:
            raise self._too_large()

    def _too_large(self) -> errors.PayloadTooLarge:
        return errors.PayloadTooLarge(
            f"The request body is larger than {self.max_body_bytes} bytes, the server's limit."
        )

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise errors.ValidationError("The client went away before sending its body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _capped(self, receive: Receive) -> Receive:
        """``receive`` that raises ``PayloadTooLarge`` once the body passes the cap."""
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise self._too_large()
            return message

        return capped


def _content_length(headers: Headers) -> int | None:
    raw = headers.get("content-length")
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands out ``body`` once, then the client's own messages
    (a disconnect, which streaming responses listen for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def refuse_duplicate_keys(body: bytes) -> None:
    """Raise ``InvalidInput`` when a JSON object in ``body`` repeats a key. A body
    that is not JSON at all is left for the route to report."""
    try:
        json.loads(body, object_pairs_hook=_unique_object)
    except _DuplicateKey as exc:
        message = f"The key {exc.key!r} appears twice in one JSON object; give it once."
        raise errors.InvalidInput([("body", message)]) from None
    except ValueError:
        return


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result
