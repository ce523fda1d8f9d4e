"""Comparisons over a response: the endpoint's success assertion and planner conditions.

A ``Comparison`` reads one value from a response, either the whole body text or a
value inside a JSON body addressed by an RFC 6901 JSON Pointer, and compares it.

Values compare as JSON values, not as Python ones: ``true`` is not ``1`` and is
neither less nor greater than a number, and ``contains`` on an array looks for an
equal element by the same rule. A value that is absent satisfies only ``missing``
(so ``ne`` on an absent value is false: there is nothing to differ). Ordering
across types (a string against a number) is false rather than an error.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cadenza.domain import errors


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    EXISTS = "exists"
    MISSING = "missing"


_ORDERED: dict[Op, Callable[[Any, Any], bool]] = {
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
}

_MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at ``pointer`` in ``document``, or a sentinel when absent."""
    if pointer == "":
        return document
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and _is_index(token) and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _is_index(segment: str) -> bool:
    # RFC 6901 array indexes are ASCII digits without leading zeros; str.isdigit
    # alone would accept "01" and "²" (which int() then rejects).
    digits = segment.isascii() and segment.isdigit()
    return digits and (len(segment) == 1 or not segment.startswith("0"))


@dataclass(frozen=True, slots=True)
class Comparison:
    """``op`` applied to the value at ``json_pointer`` (or the body text when ``None``)."""

    op: Op
    value: Any = None
    json_pointer: str | None = None

    def __post_init__(self) -> None:
        if self.json_pointer is not None and not (
            self.json_pointer == "" or self.json_pointer.startswith("/")
        ):
            raise errors.ValidationError(
                f"JSON Pointer {self.json_pointer!r} must be empty or start with '/'.",
                "json_pointer",
            )

    def holds(self, body: bytes | str) -> bool:
        """Whether the comparison holds for a response body; unparsable JSON fails."""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if self.json_pointer is None:
            subject: Any = text
        else:
            try:
                subject = resolve_pointer(json.loads(text), self.json_pointer)
            except ValueError:
                return False
        return self._compare(subject)

    def _compare(self, subject: Any) -> bool:
        if self.op is Op.EXISTS:
            return subject is not _MISSING
        if self.op is Op.MISSING:
            return subject is _MISSING
        if subject is _MISSING:
            return False
        if self.op is Op.EQ:
            return _json_equal(subject, self.value)
        if self.op is Op.NE:
            return not _json_equal(subject, self.value)
        if self.op in (Op.CONTAINS, Op.NOT_CONTAINS):
            found = _contains(subject, self.value)
            return found if self.op is Op.CONTAINS else not found
        if isinstance(subject, bool) or isinstance(self.value, bool):
            return False
        try:
            return bool(_ORDERED[self.op](subject, self.value))
        except TypeError:
            return False


def _json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values: Python's ``True == 1`` must not leak through."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def _contains(subject: Any, needle: Any) -> bool:
    if isinstance(subject, str):
        return isinstance(needle, str) and needle in subject
    if isinstance(subject, list):
        return any(_json_equal(item, needle) for item in subject)
    if isinstance(subject, dict):
        return isinstance(needle, str) and needle in subject
    return False
