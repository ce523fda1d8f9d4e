"""Opaque, time-ordered ids: a prefix, 48 bits of milliseconds, 80 random bits.

Sorting ids sorts by creation time, which keyset pagination relies on: a page
cursor is just the last id seen, and rows inserted later never shift earlier pages.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_LENGTH = 26

_random_bits: ContextVar[Callable[[int], int]] = ContextVar(
    "cadenza_id_bits", default=secrets.randbits
)


def new_id(prefix: str, now: datetime) -> str:
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | _random_bits.get()(80)
    chars = []
    for _ in range(_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def floor_id(prefix: str, at: datetime) -> str:
    """The smallest id ``new_id(prefix, …)`` can produce at or after ``at``: a keyset
    cursor meaning "everything created from ``at`` on"."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = millis << 80
    chars = []
    for _ in range(_LENGTH):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    # One below the first id of this millisecond sorts before every id made in it.
    return f"{prefix}_{''.join(reversed(chars))[:-1]}"


@contextmanager
def random_bits_from(source: Callable[[int], int]) -> Iterator[None]:
    """Draw the random part of ids made in this context (and in tasks it starts) from
    ``source`` instead of ``secrets``: the simulator replays a scenario byte for byte
    with ``random.Random(seed).getrandbits``. Nothing in production calls it."""
    token = _random_bits.set(source)
    try:
        yield
    finally:
        _random_bits.reset(token)
