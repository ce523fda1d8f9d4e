"""Request signatures: ``Cadenza-Signature: t=<unix>,v1=<hex>[,v1=<hex>]``.

Each ``v1`` is ``HMAC-SHA256(key, f"{t}.{METHOD}.{url}.{sha256_hex(body)}")`` in hex,
where ``url`` is the exact URL requested and ``body`` the exact bytes sent (empty for
none). During a key rotation two keys are active and both signatures are sent, so a
receiver holding either key can verify; the first configured key is the new one.

Receivers should use ``verify``: it compares in constant time and rejects stale
timestamps, which bounds how long a captured request can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

HEADER = "Cadenza-Signature"
SCHEME = "v1"
MAX_ACTIVE_KEYS = 2
DEFAULT_TOLERANCE = timedelta(minutes=5)


def signed_payload(timestamp: int, method: str, url: str, body: bytes) -> bytes:
    """The exact bytes every ``v1`` signature covers."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp}.{method.upper()}.{url}.{digest}".encode()


def _mac(key: str, payload: bytes) -> str:
    return hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()


def sign(keys: Sequence[str], method: str, url: str, body: bytes, timestamp: int) -> str:
    """The header value for a request, signed with up to the first two keys."""
    active = [k for k in keys if k][:MAX_ACTIVE_KEYS]
    if not active:
        raise ValueError("signing needs at least one non-empty key")
    payload = signed_payload(timestamp, method, url, body)
    entries = [f"t={timestamp}", *(f"{SCHEME}={_mac(k, payload)}" for k in active)]
    return ",".join(entries)


def parse(header: str) -> tuple[int, list[str]] | None:
    """``(timestamp, v1 signatures)`` from a header value, or ``None`` if malformed.
    Entries of unknown schemes are ignored so that new schemes can be added."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return None
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    header: str,
    method: str,
    url: str,
    body: bytes,
    keys: Sequence[str],
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> bool:
    """Whether ``header`` holds a fresh signature of this request by any of ``keys``.

    ``now`` is an aware datetime; signatures older or newer than ``tolerance``
    are rejected even when the MAC matches.
    """
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        return False
    payload = signed_payload(timestamp, method, url, body)
    expected = [_mac(k, payload) for k in keys if k]
    # Compare every pair so timing does not reveal which entry or key matched.
    matches = [hmac.compare_digest(e, s) for e in expected for s in signatures]
    return any(matches)
