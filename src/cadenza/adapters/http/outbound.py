"""What goes on the wire for one endpoint: body bytes, headers, and redirect rules."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from multidict import CIMultiDict
from yarl import URL

import cadenza
from cadenza.domain.model import Body, BodyKind, Endpoint, Header

USER_AGENT = f"Cadenza/{cadenza.__version__}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Never carried to another origin: they authenticate us to the first one.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True, slots=True)
class Outbound:
    """One hop's request. ``headers`` holds user and fixed headers; the signature is
    added per hop because it covers the method, URL and body of that hop."""

    method: str
    url: URL
    body: bytes
    headers: tuple[Header, ...]

    def header_map(self) -> CIMultiDict[str]:
        mapping: CIMultiDict[str] = CIMultiDict()
        for header in self.headers:
            mapping.add(header.name, header.value)
        return mapping

    def redirected(self, status: int, location: URL) -> Outbound:
        """The next hop: 303 (and 301/302 after a POST, as every browser does) turns
        into a body-less GET; 307/308 repeat the method and body. Crossing to another
        origin drops secret headers and credentials."""
        method, body, headers = self.method, self.body, self.headers
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", b""
            headers = tuple(h for h in headers if h.name.lower() != "content-type")
        if location.origin() != self.url.origin():
            headers = tuple(
                h for h in headers if not h.secret and h.name.lower() not in _CREDENTIAL_HEADERS
            )
        return replace(self, method=method, url=location, body=body, headers=headers)


def encode_body(body: Body | None) -> tuple[bytes, str]:
    """The exact bytes to send and their content type."""
    if body is None:
        return b"", ""
    if body.kind is BodyKind.JSON:
        data = json.dumps(body.json, separators=(",", ":"), ensure_ascii=False).encode()
        return data, body.content_type or "application/json"
    return body.text.encode(), body.content_type or "text/plain; charset=utf-8"


def idempotency_key(endpoint: Endpoint, scheduled_for_iso: str) -> str:
    return f"{endpoint.id}:{scheduled_for_iso}"


def first_hop(endpoint: Endpoint, idempotency: str) -> Outbound:
    """The initial request: User-Agent (overridable), the endpoint's headers, a
    content type for the body unless one was given, and the idempotency key."""
    request = endpoint.request
    data, content_type = encode_body(request.body)
    names = {h.name.lower() for h in request.headers}
    headers: list[Header] = []
    if "user-agent" not in names:
        headers.append(Header("User-Agent", USER_AGENT))
    headers.extend(h for h in request.headers if h.name.lower() != IDEMPOTENCY_HEADER.lower())
    if content_type and "content-type" not in names:
        headers.append(Header("Content-Type", content_type))
    headers.append(Header(IDEMPOTENCY_HEADER, idempotency))
    return Outbound(request.method.value, URL(request.url), data, tuple(headers))


def secret_values(endpoint: Endpoint) -> list[str]:
    return [h.value for h in endpoint.request.headers if h.secret]
