"""Comparisons over a response: the endpoint's success assertion and planner conditions.

A ``Comparison`` reads one value from a response, either the whole body text or a
value inside a JSON body addressed by an RFC 6901 JSON Pointer, and compares it.
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
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


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
            return bool(subject == self.value)
        if self.op is Op.NE:
            return bool(subject != self.value)
        if self.op in (Op.CONTAINS, Op.NOT_CONTAINS):
            found = _contains(subject, self.value)
            return found if self.op is Op.CONTAINS else not found
        try:
            return bool(_ORDERED[self.op](subject, self.value))
        except TypeError:
            return False


def _contains(subject: Any, needle: Any) -> bool:
    if isinstance(subject, str):
        return isinstance(needle, str) and needle in subject
    if isinstance(subject, list | dict):
        return needle in subject
    return False
