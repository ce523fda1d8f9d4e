"""Reading and judging responses: bounded capture, Retry-After, readable verdicts.

Secrets are taken out of what is captured by ``redaction.Redactor``.

A response body is read only up to the capture limit and the rest is never pulled
off the socket, so a target streaming gigabytes costs at most the limit in memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from aiohttp import ClientResponse

from cadenza.domain.assertions import Comparison
from cadenza.domain.model import DEFAULT_EXPECTED_STATUS, ResponseCapture

MAX_CAPTURED_HEADERS = 32
MAX_HEADER_VALUE = 1024
# Response headers that can carry the target's credentials; not worth storing.
_UNCAPTURED_HEADERS = frozenset({"set-cookie", "set-cookie2", "authorization", "www-authenticate"})


async def read_capture(response: ClientResponse, limit: int) -> ResponseCapture:
    """At most ``limit`` bytes of the (decoded) body, plus its size: the
    Content-Length when declared for an unencoded body, else the bytes read.
    ``truncated`` means the body did not end within the limit.

    Stops reading at the limit; the caller must then close (not release) the
    response so the unread rest is dropped with the connection.
    """
    content = response.content
    chunks: list[bytes] = []
    received = 0
    # Checking at_eof() first spares the read that would only return b"": most
    # bodies arrive whole, often with the headers.
    while received < limit and not content.at_eof():
        chunk = await content.read(limit - received)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    # A compressed body's Content-Length counts encoded bytes, not the bytes read.
    encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
    declared = None if encoded else _content_length(response)
    if received < limit:
        truncated = False
    elif declared is not None:
        truncated = declared > received
    else:
        # Whatever has not arrived yet was not read: truncated. Waiting to find
        # out would turn a capped stream into a timeout.
        truncated = not content.at_eof()
    size = max(declared, received) if declared is not None else received
    return ResponseCapture(
        body=b"".join(chunks),
        content_type=response.headers.get("Content-Type", ""),
        size=size,
        truncated=truncated,
        headers=_captured_headers(response),
    )


def _content_length(response: ClientResponse) -> int | None:
    raw = response.headers.get("Content-Length", "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _captured_headers(response: ClientResponse) -> tuple[tuple[str, str], ...]:
    kept = [
        (name, value[:MAX_HEADER_VALUE])
        for name, value in response.headers.items()
        if name.lower() not in _UNCAPTURED_HEADERS
    ]
    return tuple(kept[:MAX_CAPTURED_HEADERS])


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as a delay: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
    Dates in the past mean "now"; anything unparsable is ignored."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(timedelta(0), when - now)


def describe_statuses(statuses: frozenset[int]) -> str:
    """``2xx`` for the default, else compact ranges: ``200-204, 301``."""
    if statuses == DEFAULT_EXPECTED_STATUS:
        return "2xx"
    ordered = sorted(statuses)
    spans: list[str] = []
    start = prev = ordered[0]
    for code in [*ordered[1:], None]:
        if code is not None and code == prev + 1:
            prev = code
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if code is not None:
            start = prev = code
    return ", ".join(spans)


def describe_assertion(assertion: Comparison) -> str:
    """The assertion as a person would say it: ``/status eq 'ok'``."""
    subject = "body" if assertion.json_pointer is None else f"JSON {assertion.json_pointer or '/'}"
    if assertion.value is None and assertion.op.value in ("exists", "missing"):
        return f"{subject} {assertion.op.value}"
    return f"{subject} {assertion.op.value} {assertion.value!r}"
