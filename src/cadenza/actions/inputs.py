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
from collections.abc import Mapping, Sequence
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
    schema = _schema(model)
    given = _whole_numbers_as_integers(dict(payload), schema, schema.get("$defs", {}))
    try:
        document = json.dumps(given, default=_json_default, allow_nan=False)
    except ValueError:
        raise errors.InvalidInput([("", "Numbers must be finite.")]) from None
    return validate_json(model, document)


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def _whole_numbers_as_integers(
    value: Any, schema: Mapping[str, Any], defs: Mapping[str, Any]
) -> Any:
    """``value`` with every ``n.0`` where ``schema`` takes an integer (and no other
    number) turned into ``n``; anything else unchanged."""
    while "$ref" in schema:
        schema = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
    if isinstance(value, float) and value.is_integer() and _integer_only(schema, defs):
        return int(value)
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        value = _whole_numbers_as_integers(value, option, defs)
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {
            k: _whole_numbers_as_integers(v, props[k], defs) if k in props else v
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_whole_numbers_as_integers(item, schema["items"], defs) for item in value]
    return value


def _integer_only(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    types: set[str] = set()
    for option in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        while "$ref" in option:
            option = defs.get(str(option["$ref"]).rsplit("/", 1)[-1], {})
        declared = option.get("type")
        types.update(declared if isinstance(declared, list) else [declared] if declared else [])
    return "integer" in types and "number" not in types


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


def decode_text(
    model: type[BaseModel], values: Mapping[str, str | Sequence[str]]
) -> dict[str, Any]:
    """Text values as the JSON values ``model`` expects (module docstring).

    A value is decoded only when its text is the JSON form of the field's type;
    anything else stays text, so strict validation names the field. Unknown names
    are kept as they are, for the model to refuse.
    """
    fields = model.model_fields
    decoded: dict[str, Any] = {}
    for name, value in values.items():
        info = fields.get(name)
        kinds = scalar_kinds(info.annotation) if info is not None else frozenset()
        if isinstance(value, str):
            decoded[name] = _decode_scalar(value, kinds)
        else:
            decoded[name] = [_decode_scalar(item, kinds) for item in value]
    return decoded


def _decode_scalar(text: str, kinds: frozenset[type]) -> Any:
    if str in kinds or not kinds:
        return text
    if bool in kinds and text in _BOOLEANS:
        return _BOOLEANS[text]
    if int in kinds and _INTEGER.fullmatch(text):
        return int(text)
    if float in kinds and _NUMBER.fullmatch(text):
        return float(text)
    return text


def scalar_kinds(annotation: Any) -> frozenset[type]:
    """The JSON scalar types a field takes, ``str`` standing for every text-like one
    (strings, enums, times), looking through ``Optional``, ``Annotated`` and lists."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return scalar_kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType, *_COLLECTIONS):
        return frozenset().union(*(scalar_kinds(arg) for arg in get_args(annotation)))
    if annotation is type(None):
        return frozenset()
    if annotation in (bool, int, float):
        return frozenset({annotation})
    return frozenset({str})


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
