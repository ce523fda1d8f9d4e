"""The table-driven id encoder against the plain divmod definition of the format."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from cadenza import ids

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _reference(prefix: str, at: datetime, random_part: int) -> str:
    """``<prefix>_`` + the 128-bit (millis << 80 | random) in 26 Crockford digits."""
    value = ((int(at.timestamp() * 1000) & ((1 << 48) - 1)) << 80) | random_part
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def _times(rng: random.Random) -> list[datetime]:
    fixed = [datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]
    drawn = [datetime.fromtimestamp(rng.uniform(0, 8e9), UTC) for _ in range(300)]
    return fixed + drawn


@pytest.mark.parametrize("random_part", [0, 1, (1 << 80) - 1, 0x5A5A5A5A5A5A5A5A5A5A])
def test_new_id_matches_the_reference_encoding_at_the_edges(random_part: int) -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with ids.random_bits_from(lambda _bits: random_part):
        assert ids.new_id("run", at) == _reference("run", at, random_part)


def test_new_id_matches_the_reference_encoding() -> None:
    rng = random.Random(7)
    for at in _times(rng):
        part = rng.getrandbits(80)
        with ids.random_bits_from(lambda _bits, part=part: part):
            made = ids.new_id("ept", at)
        assert made == _reference("ept", at, part)
        assert len(made) == len("ept_") + 26


def test_new_id_asks_for_80_random_bits() -> None:
    asked: list[int] = []
    with ids.random_bits_from(lambda bits: asked.append(bits) or 0):
        ids.new_id("run", datetime(2026, 6, 1, tzinfo=UTC))
    assert asked == [80]


def test_floor_id_sorts_before_every_id_of_its_millisecond_and_after_earlier_ones() -> None:
    rng = random.Random(11)
    for at in _times(rng):
        floor = ids.floor_id("run", at)
        assert floor == _reference("run", at, 0)[:-1]
        earlier = at - timedelta(milliseconds=1)
        with ids.random_bits_from(lambda _bits: 0):
            assert floor < ids.new_id("run", at)
        with ids.random_bits_from(lambda _bits: (1 << 80) - 1):
            assert ids.new_id("run", at) > floor
            if earlier.timestamp() >= 0:
                assert ids.new_id("run", earlier) < floor


def test_ids_made_one_after_another_in_one_millisecond_sort_in_creation_order() -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    made = [ids.new_id("run", at) for _ in range(1000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_only_the_first_id_of_a_millisecond_draws_random_bits() -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    asked: list[int] = []
    with ids.random_bits_from(lambda bits: asked.append(bits) or 5):
        first, second = ids.new_id("run", at), ids.new_id("run", at)
        later = ids.new_id("run", at + timedelta(milliseconds=1))
    assert (first, second) == (_reference("run", at, 5), _reference("run", at, 6))
    assert later == _reference("run", at + timedelta(milliseconds=1), 5)
    assert asked == [80, 80]


def test_the_random_part_never_wraps_within_a_millisecond() -> None:
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    draws = iter([(1 << 80) - 1, 42])
    with ids.random_bits_from(lambda _bits: next(draws)):
        ids.new_id("run", at)
        assert ids.new_id("run", at) == _reference("run", at, 42)
