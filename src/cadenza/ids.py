"""Opaque, time-ordered ids: a prefix, 48 bits of milliseconds, 80 random bits.

Sorting ids sorts by creation time, which keyset pagination relies on: a page
cursor is just the last id seen, and rows inserted later never shift earlier pages.

Within one millisecond ids are monotonic too: the first id of a millisecond draws
its 80 bits at random, the next ones (made for the same millisecond, one after the
other) add one. So a batch of runs recorded at one ``now`` sorts in creation order,
and only one draw per millisecond reaches the random source (each ``secrets`` draw is
a system call). The bits of an id are therefore unique, not unguessable: no id is a
secret (API keys carry their own random secret).

The 26 characters are the 128-bit value in Crockford base32 (lower case), most
significant first: 10 characters of milliseconds, then 16 of random bits.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from itertools import count

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_MILLIS_MASK = (1 << 48) - 1
_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1

_STAMP_CHARS = 10  # 50 bits: the 48 of milliseconds, 2 zero bits
_RANDOM_CHARS = 16


class _Sequence:
    """The random part of successive ids: a draw per new millisecond, then +1 per id.

    Safe across threads without a lock: the state is one tuple replaced whole, and
    ``next`` on an ``itertools.count`` is atomic, so two threads in the same
    millisecond get different increments (or, both starting a millisecond, two
    independent draws).
    """

    def __init__(self, draw: Callable[[int], int]) -> None:
        self._draw = draw
        self._state: tuple[int, str, int, Iterator[int]] = (-1, "", 0, count())

    def next_id(self, prefix: str, millis: int) -> str:
        last, stamp, base, step = self._state
        if millis == last:
            value = base + next(step)
            # Wrapping would break the order; a fresh draw keeps the id unique.
            if value <= _RANDOM_MAX:
                return f"{prefix}_{stamp}{_base32(value, _RANDOM_CHARS)}"
        base = self._draw(_RANDOM_BITS)
        stamp = _base32(millis, _STAMP_CHARS)
        self._state = (millis, stamp, base, count(1))
        return f"{prefix}_{stamp}{_base32(base, _RANDOM_CHARS)}"


_PROCESS_SEQUENCE = _Sequence(secrets.randbits)
"""The sequence of every id made outside ``random_bits_from``: one per process."""
_sequence: ContextVar[_Sequence | None] = ContextVar("cadenza_id_sequence", default=None)


def new_id(prefix: str, now: datetime) -> str:
    millis = int(now.timestamp() * 1000) & _MILLIS_MASK
    return (_sequence.get() or _PROCESS_SEQUENCE).next_id(prefix, millis)


def floor_id(prefix: str, at: datetime) -> str:
    """The smallest id ``new_id(prefix, …)`` can produce at or after ``at``: a keyset
    cursor meaning "everything created from ``at`` on"."""
    # One below the first id of this millisecond (random part all zeros, last
    # character dropped) sorts before every id made in it.
    return f"{prefix}_{_stamp(at)}{_ALPHABET[0] * (_RANDOM_CHARS - 1)}"


def _stamp(now: datetime) -> str:
    millis = int(now.timestamp() * 1000) & _MILLIS_MASK
    return _base32(millis, _STAMP_CHARS)


def _base32(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value``, most significant character first."""
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


@contextmanager
def random_bits_from(source: Callable[[int], int]) -> Iterator[None]:
    """Draw the random part of ids made in this context (and in tasks it starts) from
    ``source`` instead of ``secrets``: the simulator replays a scenario byte for byte
    with ``random.Random(seed).getrandbits``. Nothing in production calls it."""
    token = _sequence.set(_Sequence(source))
    try:
        yield
    finally:
        _sequence.reset(token)
