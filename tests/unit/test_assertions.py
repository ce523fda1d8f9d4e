"""Response comparisons: RFC 6901 JSON Pointers and the comparison operators."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cadenza.domain.assertions import Comparison, Op, resolve_pointer

DOCUMENT: dict[str, Any] = {
    "status": "ok",
    "count": 3,
    "ratio": 0.25,
    "healthy": True,
    "nothing": None,
    "items": [{"id": "a"}, {"id": "b"}],
    "tags": ["blue", "green", 1],
    "a/b": "slash",
    "m~n": "tilde",
    "~1": "literal tilde-one",
    "": "empty key",
}
BODY = json.dumps(DOCUMENT)


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        pytest.param("", DOCUMENT, id="the empty pointer is the whole document"),
        pytest.param("/status", "ok", id="a top-level key"),
        pytest.param("/items/1/id", "b", id="an array index then a key"),
        pytest.param("/a~1b", "slash", id="tilde-one stands for a slash"),
        pytest.param("/m~0n", "tilde", id="tilde-zero stands for a tilde"),
        pytest.param("/~01", "literal tilde-one", id="tilde-zero-one decodes to tilde-one"),
        pytest.param("/", "empty key", id="a lone slash is the empty key"),
        pytest.param("/nothing", None, id="a JSON null is a present value"),
    ],
)
def test_a_pointer_finds_its_value(pointer: str, expected: Any) -> None:
    assert resolve_pointer(DOCUMENT, pointer) == expected


@pytest.mark.parametrize(
    "pointer",
    [
        pytest.param("/absent", id="a missing key"),
        pytest.param("/items/2", id="an index past the end"),
        pytest.param("/items/-", id="the past-the-end marker"),
        pytest.param("/items/01", id="an index with a leading zero"),
        pytest.param("/items/²", id="a non-ASCII digit"),
        pytest.param("/items/x", id="a key on an array"),
        pytest.param("/status/0", id="an index into a string"),
    ],
)
def test_a_pointer_to_nothing_finds_nothing(pointer: str) -> None:
    assert Comparison(Op.MISSING, json_pointer=pointer).holds(BODY)
    assert not Comparison(Op.EXISTS, json_pointer=pointer).holds(BODY)


CASES = [
    (Op.EQ, "/status", "ok", True),
    (Op.EQ, "/count", 3, True),
    (Op.EQ, "/count", 3.0, True),
    (Op.EQ, "/items/0", {"id": "a"}, True),
    (Op.EQ, "/status", "OK", False),
    (Op.EQ, "/healthy", True, True),
    (Op.EQ, "/healthy", 1, False),
    (Op.EQ, "/count", True, False),
    (Op.EQ, "/nothing", None, True),
    (Op.EQ, "/absent", None, False),
    (Op.NE, "/status", "down", True),
    (Op.NE, "/healthy", 1, True),
    (Op.NE, "/absent", "x", False),
    (Op.LT, "/count", 4, True),
    (Op.LT, "/count", 3, False),
    (Op.LE, "/count", 3, True),
    (Op.GT, "/ratio", 0.2, True),
    (Op.GE, "/ratio", 0.25, True),
    (Op.GT, "/status", 1, False),
    (Op.GT, "/healthy", 0, False),
    (Op.LT, "/absent", 10, False),
    (Op.CONTAINS, "/status", "o", True),
    (Op.CONTAINS, "/tags", "green", True),
    (Op.CONTAINS, "/tags", "red", False),
    (Op.CONTAINS, "/tags", True, False),
    (Op.CONTAINS, "/items/0", "id", True),
    (Op.CONTAINS, "/count", 3, False),
    (Op.NOT_CONTAINS, "/tags", "red", True),
    (Op.NOT_CONTAINS, "/status", "o", False),
    (Op.EXISTS, "/nothing", None, True),
    (Op.MISSING, "/status", None, False),
]


@pytest.mark.parametrize(
    ("op", "pointer", "value", "expected"),
    CASES,
    ids=[f"{p} {op.value} {v!r} is {e}" for op, p, v, e in CASES],
)
def test_a_comparison_over_a_json_value(op: Op, pointer: str, value: Any, expected: bool) -> None:
    assert Comparison(op, value, pointer).holds(BODY) is expected


def test_without_a_pointer_the_comparison_reads_the_body_text() -> None:
    assert Comparison(Op.CONTAINS, "healthy").holds(b"all healthy here")
    assert Comparison(Op.EQ, "pong").holds("pong")
    assert not Comparison(Op.CONTAINS, "down").holds(b"all healthy here")


def test_a_body_that_is_not_json_fails_a_pointer_comparison() -> None:
    assert not Comparison(Op.EXISTS, json_pointer="/status").holds(b"<html>oops</html>")
    assert not Comparison(Op.MISSING, json_pointer="/status").holds(b"<html>oops</html>")


def test_a_body_that_is_not_utf8_is_read_with_replacements() -> None:
    assert Comparison(Op.CONTAINS, "ok").holds(b"\xff\xfe ok")


def test_bytes_and_text_bodies_compare_alike() -> None:
    check = Comparison(Op.EQ, 3, "/count")
    assert check.holds(BODY)
    assert check.holds(BODY.encode())
