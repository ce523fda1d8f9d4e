"""How a field of an action's input model is shown in a form and read back from it.

One ``Shape`` per field, derived from the model's annotation and constraints only,
so a form never restates an action's schema: the same function decides the widget
(``forms.build_form``) and how the submitted strings become the payload
(``forms.payload``). The action's own model then validates that payload, exactly as
on REST and MCP.
"""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

LONG_TEXT_LENGTH = 2048
"""Strings allowed to be longer than this (a URL's limit) get a text area."""
_TIMES: tuple[Any, ...] = (datetime, AwareDatetime)


class Kind(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    NUMBER = "number"
    FLAG = "flag"
    CHOICE = "choice"
    TIME = "time"
    CHOICES = "choices"
    LIST = "list"
    GROUP = "group"
    OPTIONAL_GROUP = "optional_group"
    ROWS = "rows"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Shape:
    """What a field is, for a form: its widget kind and what that needs."""

    kind: Kind
    nullable: bool = False
    options: tuple[str, ...] = ()
    model: type[BaseModel] | None = None
    loose: bool = False
    """JSON fields typed ``Any``: text that is not JSON is taken as a string."""
    limits: dict[str, str] = field(default_factory=dict)


def _strip_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type and the metadata of any ``Annotated`` wrappers around it."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        for item in extra:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        annotation = inner
    return annotation, metadata


def _without_none(annotation: Any) -> tuple[Any, bool, list[Any]]:
    """``X | None`` as (X, nullable); other unions stay whole."""
    annotation, metadata = _strip_annotated(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        arms = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(arms) < len(get_args(annotation))
        if len(arms) == 1:
            inner, more = _strip_annotated(arms[0])
            return inner, nullable, metadata + more
        return Union[tuple(arms)], nullable, metadata  # noqa: UP007 - rebuilt at run time
    return annotation, False, metadata


def _limits(metadata: list[Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in metadata:
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = item.ge if isinstance(item, annotated_types.Ge) else item.gt
            found["min"] = str(low)
        elif isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = item.le if isinstance(item, annotated_types.Le) else item.lt
            found["max"] = str(high)
        elif isinstance(item, annotated_types.MaxLen):
            found["maxlength"] = str(item.max_length)
    return found


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _choices(annotation: Any) -> tuple[str, ...] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return tuple(str(member.value) for member in annotation)
    if get_origin(annotation) is Literal:
        return tuple(str(arg) for arg in get_args(annotation))
    return None


def _list_shape(item: Any, nullable: bool, limits: dict[str, str]) -> Shape:
    item, _ = _strip_annotated(item)
    options = _choices(item)
    if options is not None:
        return Shape(Kind.CHOICES, nullable, options)
    if item in (str, int, float):
        return Shape(Kind.LIST, nullable, limits=limits)
    if _is_model(item) and all(
        shape_of(info).kind in _SCALARS for info in item.model_fields.values()
    ):
        return Shape(Kind.ROWS, nullable, model=item)
    return Shape(Kind.JSON, nullable)


def shape_of(info: FieldInfo) -> Shape:
    """The form shape of one model field."""
    annotation, nullable, metadata = _without_none(info.annotation)
    limits = _limits([*info.metadata, *metadata])
    options = _choices(annotation)
    if options is not None:
        return Shape(Kind.CHOICE, nullable, options)
    if annotation is bool:
        return Shape(Kind.FLAG, nullable)
    if annotation in (int, float):
        return Shape(Kind.NUMBER, nullable, limits=limits)
    if annotation is str:
        long = int(limits.get("maxlength", "0")) > LONG_TEXT_LENGTH
        return Shape(Kind.LONG_TEXT if long else Kind.TEXT, nullable, limits=limits)
    if annotation in _TIMES:
        return Shape(Kind.TIME, nullable)
    if _is_model(annotation):
        kind = Kind.OPTIONAL_GROUP if nullable else Kind.GROUP
        return Shape(kind, nullable, model=annotation)
    if get_origin(annotation) in (list, tuple, set, frozenset):
        args = get_args(annotation)
        return _list_shape(args[0] if args else Any, nullable, limits)
    return Shape(Kind.JSON, nullable, loose=annotation is Any)


_SCALARS = frozenset({Kind.TEXT, Kind.LONG_TEXT, Kind.NUMBER, Kind.FLAG, Kind.CHOICE, Kind.TIME})


def wire_name(name: str, info: FieldInfo) -> str:
    """The key the model reads (its alias when it has one), as errors name it too."""
    return info.alias or name


def label_of(name: str) -> str:
    """A person's label for a field name: ``ttl_seconds`` reads "TTL (seconds)"."""
    words = name.rstrip("_").split("_")
    unit = ""
    if len(words) > 1 and words[-1] == "seconds":
        words, unit = words[:-1], " (seconds)"
    text = " ".join(_ABBREVIATIONS.get(w, w) for w in words)
    return text[:1].upper() + text[1:] + unit


_ABBREVIATIONS = {"ttl": "TTL", "url": "URL", "id": "ID", "json": "JSON", "http": "HTTP"}
