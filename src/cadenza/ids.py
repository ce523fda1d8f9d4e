"""Opaque, time-ordered ids: a prefix, 48 bits of milliseconds, 80 random bits.

Sorting ids sorts by creation time, which keyset pagination relies on: a page
cursor is just the last id seen, and rows inserted later never shift earlier pages.
"""

from __future__ import annotations

import secrets
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_LENGTH = 26


def new_id(prefix: str, now: datetime) -> str:
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"
