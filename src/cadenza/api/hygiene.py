"""Per-request hygiene as plain ASGI middleware: request ids, security headers, and
the client's address behind trusted proxies.

* ``X-Request-ID``: echoed when the client sent a sane one, generated otherwise;
  handlers see it as ``request.state.request_id`` (problem bodies carry it).
* Every response: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer``, ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``.
* API responses (``/api/``): ``Cache-Control: no-store`` unless the route set one.

* ``TrustedProxies``: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only
  when the connection comes from a listed proxy (``CADENZA_TRUSTED_PROXIES``); from
  anyone else they are ignored, so a client cannot pick the address that per-client
  limits count it under. The server's own proxy-header handling is off.

Plain ASGI rather than ``BaseHTTPMiddleware`` so streamed responses pass through
untouched and the hot path stays cheap.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SANE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.fullmatch(text) else None
    return None


class Hygiene:
    def __init__(self, app: ASGIApp, api_prefix: str = "/api/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        is_api = str(scope.get("path", "")).startswith(self.api_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in _SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if is_api:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Rewrites the scope's client address (and scheme) from the forwarding headers a
    trusted proxy added. Walking ``X-Forwarded-For`` from the right, every address
    of a trusted proxy is skipped; the first other one is the client. An entry that
    is not an address ends the walk at the last trusted hop."""

    def __init__(self, app: ASGIApp, trusted: Iterable[str] = ()) -> None:
        self.app = app
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in trusted if entry.strip()
        )

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        trusted = self.networks and client and self._trusted(client[0])
        if trusted and client and scope["type"] in ("http", "websocket"):
            forwarded = _header_values(scope, b"x-forwarded-for")
            scope["client"] = (self._client(forwarded, client[0]), client[1])
            proto = _header_values(scope, b"x-forwarded-proto")
            if proto and proto[-1].lower() in ("http", "https"):
                scope["scheme"] = proto[-1].lower()
        await self.app(scope, receive, send)

    def _client(self, forwarded: list[str], peer: str) -> str:
        client = peer
        for entry in reversed(forwarded):
            try:
                client = str(ipaddress.ip_address(entry))
            except ValueError:
                break
            if not self._trusted(client):
                break
        return client


def _header_values(scope: Scope, name: bytes) -> list[str]:
    """Every comma-separated value of header ``name``, in order, over all its lines."""
    values: list[str] = []
    for key, value in scope.get("headers", ()):
        if key == name:
            values.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [v for v in values if v]
