"""Parsing untrusted input into an action's input model, the same way on every surface.

Validation is strict about JSON types: ``true`` is not ``1``, a number is not a
time, ``0`` is not ``false`` and ``"5"`` is not ``5``. A payload is checked as the
JSON document it came as (or would be), so an RFC 3339 string is a time and an enum
is its value, but nothing is coerced across JSON types.

Text-only inputs (a query string, a form) carry no JSON types, so ``decode_text``
first reads each value as the JSON form of its field's type (``"20"`` for an
integer becomes ``20``, ``"true"`` for a boolean becomes ``true``); the result is
then validated by the same strict rules.

A JSON number with no fraction (``5.0``) is an integer, as JSON Schema says, so
where the schema takes integers such numbers are read as integers before the strict
validation; elsewhere (numbers, free JSON values) they stay as they are.

Every failure is an ``InvalidInput`` naming each offending field by its dotted path.
"""

from __future__ import annotations

import functools
import json
import re
import types
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel

from cadenza.domain import errors

M = TypeVar("M", bound=BaseModel)

_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}
_COLLECTIONS = (list, tuple, set, frozenset)


def validate_model(model: type[M], payload: Mapping[str, Any]) -> M:
    """``payload`` (JSON-shaped) as ``model``, strictly; ``InvalidInput`` otherwise."""
    given = _as_schema_reads(model, payload, text=False)
    try:
        document = json.dumps(given, default=_json_default, allow_nan=False)
    except ValueError:
        raise errors.InvalidInput([("", "Numbers must be finite.")]) from None
    return validate_json(model, document)


def decode_text(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Values that came as text (a query string, a form) as the JSON values ``model``
    takes (module docstring), at any depth.

    A text is read as a number or a boolean only where the schema takes that and no
    string, and only when it is that value's JSON form (``"20"``, ``"0.5"``,
    ``"true"``); anything else stays text, so strict validation names the field.
    Values that are not text, and unknown names, are left as they are.
    """
    return _as_schema_reads(model, values, text=True)


def _as_schema_reads(
    model: type[BaseModel], payload: Mapping[str, Any], *, text: bool
) -> dict[str, Any]:
    schema = _schema(model)
    read: dict[str, Any] = _read(dict(payload), schema, schema.get("$defs", {}), text)
    return read


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def _read(value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any], text: bool) -> Any:
    """``value`` as ``schema`` reads it: ``n.0`` is an integer where only integers
    are taken; with ``text``, a text is a number or a boolean where only those are."""
    schema = _resolved(schema, defs)
    taken = _types(schema, defs)
    if isinstance(value, float) and value.is_integer() and "number" not in taken:
        return int(value) if "integer" in taken else value
    if text and isinstance(value, str) and taken and "string" not in taken:
        return _scalar(value, taken)
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        value = _read(value, option, defs, text)
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {k: _read(v, props[k], defs, text) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_read(item, schema["items"], defs, text) for item in value]
    return value


def _scalar(text: str, taken: set[str]) -> Any:
    if "boolean" in taken and text in _BOOLEANS:
        return _BOOLEANS[text]
    if taken & {"integer", "number"} and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in taken and _NUMBER.fullmatch(text):
        return float(text)
    return text


def _resolved(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
    return schema


def _types(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> set[str]:
    """The JSON types ``schema`` names, through ``anyOf``/``oneOf`` (empty: any)."""
    found: set[str] = set()
    for option in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        option = _resolved(option, defs)
        declared = option.get("type")
        found.update(declared if isinstance(declared, list) else [declared] if declared else [])
    return found


def validate_json(model: type[M], document: str | bytes) -> M:
    """A JSON document as ``model``, strictly; ``InvalidInput`` otherwise."""
    try:
        return model.model_validate_json(document, strict=True)
    except pydantic.ValidationError as exc:
        raise invalid_input(exc) from None


def _json_default(value: object) -> object:
    # In-process callers may hand over Python values; each has one JSON form.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def invalid_input(exc: pydantic.ValidationError) -> errors.InvalidInput:
    problems = [(field_path(err["loc"]), _message(err)) for err in exc.errors()]
    return errors.InvalidInput(problems)


def _message(err: Any) -> str:
    if err["type"] == "json_invalid":
        return "The body is not valid JSON."
    return str(err["msg"])


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A dotted path from a Pydantic error location, list indexes kept as numbers."""
    return ".".join(str(part) for part in loc)


def takes_many(annotation: Any) -> bool:
    """Whether a field takes a list of values (so a query parameter may repeat)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return takes_many(get_args(annotation)[0])
    if origin in _COLLECTIONS:
        return True
    if origin in (Union, types.UnionType):
        return any(takes_many(arg) for arg in get_args(annotation))
    return False
