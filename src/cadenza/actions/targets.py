"""Where an endpoint may send its requests, and its secrets.

* A URL whose host is a literal address the SSRF guard refuses is refused when the
  endpoint is saved (``refuse_unreachable``), with the setting that would open it.
* A secret header value is entered for one origin (scheme, host and port, RFC 6454);
  the stored value follows the endpoint only while its URL stays there (``same_origin``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cadenza.actions.base import Context
from cadenza.domain import errors

_DEFAULT_PORTS = {"http": 80, "https": 443}


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
