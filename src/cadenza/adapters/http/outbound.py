"""What goes on the wire for one endpoint: body bytes, headers, and redirect rules.

A ``Template`` holds what every run of one ``Request`` shares (parsed URL, encoded
body, fixed headers); a run adds only its idempotency key. ``Outbound`` is one
hop as a redirect rewrites it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from multidict import CIMultiDict
from yarl import URL

import cadenza
from cadenza.domain.model import Body, BodyKind, Endpoint, Header, Request

USER_AGENT = f"Cadenza/{cadenza.__version__}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Never carried to another origin: they authenticate us to the first one.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True, slots=True)
class Outbound:
    """One hop's request. ``headers`` holds user and fixed headers, ``idempotency``
    the run's key (sent as ``Idempotency-Key`` on every hop); the signature is added
    per hop because it covers the method, URL and body of that hop."""

    method: str
    url: URL
    body: bytes
    headers: tuple[Header, ...]
    idempotency: str

    def header_map(self) -> CIMultiDict[str]:
        mapping = _header_map(self.headers)
        mapping.add(IDEMPOTENCY_HEADER, self.idempotency)
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


@dataclass(frozen=True, slots=True)
class Template:
    """The first hop of every run of one request, minus the run's idempotency key.

    ``headers`` are User-Agent (overridable), the request's own headers (a user's
    ``Idempotency-Key`` gives way to ours) and a content type for the body unless
    one was given. ``header_map`` is the same, ready to copy: copying is several
    times cheaper than building.
    """

    method: str
    url: URL
    body: bytes
    headers: tuple[Header, ...]
    header_map: CIMultiDict[str]

    @classmethod
    def of(cls, request: Request) -> Template:
        data, content_type = encode_body(request.body)
        names = {h.name.lower() for h in request.headers}
        headers: list[Header] = []
        if "user-agent" not in names:
            headers.append(Header("User-Agent", USER_AGENT))
        headers.extend(h for h in request.headers if h.name.lower() != IDEMPOTENCY_HEADER.lower())
        if content_type and "content-type" not in names:
            headers.append(Header("Content-Type", content_type))
        fixed = tuple(headers)
        return cls(request.method.value, URL(request.url), data, fixed, _header_map(fixed))

    def headers_for(self, idempotency: str) -> CIMultiDict[str]:
        """The first hop's headers for one run."""
        mapping = self.header_map.copy()
        mapping.add(IDEMPOTENCY_HEADER, idempotency)
        return mapping

    def hop(self, idempotency: str) -> Outbound:
        """The first hop as an ``Outbound``, for a redirect to rewrite."""
        return Outbound(self.method, self.url, self.body, self.headers, idempotency)


def _header_map(headers: tuple[Header, ...]) -> CIMultiDict[str]:
    mapping: CIMultiDict[str] = CIMultiDict()
    for header in headers:
        mapping.add(header.name, header.value)
    return mapping


def first_hop(endpoint: Endpoint, idempotency: str) -> Outbound:
    """The initial request of one run: the template's headers plus the idempotency key."""
    return Template.of(endpoint.request).hop(idempotency)


def secret_values(request: Request) -> list[str]:
    return [h.value for h in request.headers if h.secret]
