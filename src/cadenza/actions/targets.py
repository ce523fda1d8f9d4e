"""Where an endpoint may send its requests, and its secrets.

* A URL whose host is a literal address the SSRF guard refuses is refused when the
  endpoint is saved (``refuse_unreachable``), with the setting that would open it.
* A secret header value is entered for one origin (scheme, host and port, RFC 6454);
  the stored value follows the endpoint only while its URL stays there (``same_origin``).
* What cannot go on the wire as written is refused on input (``check_sendable``).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from cadenza.actions.base import Context
from cadenza.domain import errors

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
"""RFC 9110 §5.6.2 ``tchar``: the characters of a header name."""
_CONTROLS = frozenset(chr(c) for c in (*range(0x20), 0x7F))


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lower-cased host and port (the scheme's default when none is written)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range: no origin a request could have
        port = None
    return scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port."""
    return origin(url) == origin(other)


def refuse_unreachable(ctx: Context, url: str) -> None:
    """Refuse a URL the server would never connect to (a literal address in a refused
    range, a metadata host), naming the setting that opens it."""
    targets = ctx.services.targets
    if targets is None:
        return
    try:
        targets.check_url(url)
    except errors.UnsafeTarget as exc:
        raise errors.UnsafeTarget(
            f"The server refuses to send requests to {url!r}: {exc.message}. An operator "
            "can open an address or range with CADENZA_SSRF_ALLOWLIST."
        ) from None


def check_sendable(url: str, headers: Iterable[tuple[str, str]]) -> None:
    """Refuse what could not go on the wire as written: a URL with a space or a
    control character (parsers drop or split on them, so the URL sent would not be
    the one stored), a header name that is not an RFC 9110 token, a header value
    with a control character other than tab. Checked on input only: requests read
    back from the store are shown and sent as they were stored."""
    if any(c in _CONTROLS or c == " " for c in url):
        raise errors.InvalidUrl(
            f"URL {url!r} holds a space or a control character (CR, LF …); "
            "percent-encode it (%20) or remove it.",
            "request.url",
        )
    for index, (name, value) in enumerate(headers):
        if not set(name) <= _TOKEN_CHARS:
            raise errors.ValidationError(
                f"Header name {name!r} is not an HTTP token (RFC 9110: letters, digits "
                "and !#$%&'*+-.^_`|~).",
                f"request.headers.{index}.name",
            )
        if any(c in _CONTROLS and c != "\t" for c in value):
            raise errors.ValidationError(
                f"Header {name!r} holds a control character (NUL, a line break …); "
                "only tabs and visible characters are allowed.",
                f"request.headers.{index}.value",
            )
