"""Forms generated from the actions' input models, and their submissions read back.

``build_form`` lays out an action's input model (or the fields of it a page asks
for) as labelled widgets, nested models as fieldsets under dotted names
(``request.url``), lists of small models as rows (``request.headers.0.name``).
``payload`` turns the submitted strings back into the action's input: empty means
"not given" (``null`` where the field takes it); the model validates the rest, so a
bad value is reported by the same rule, and with the same message, as on REST.
``place_problems`` puts each reported problem beside the field it names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from cadenza.actions.inputs import decode_text
from cadenza.domain import errors
from cadenza.web.shapes import Kind, Shape, label_of, shape_of, wire_name

Submitted = Mapping[str, Sequence[str]]
"""A form as submitted (or as prefilled): every name with its values, in order."""

_TRUE = frozenset({"on", "true", "1", "yes"})


@dataclass(frozen=True, slots=True)
class FormField:
    """One widget (or fieldset) of a generated form."""

    name: str
    label: str
    kind: Kind
    required: bool
    help: str
    values: tuple[str, ...]
    options: tuple[str, ...] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)
    children: tuple[FormField, ...] = ()
    error: str = ""

    @property
    def value(self) -> str:
        return self.values[-1] if self.values else ""

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def checked(self) -> bool:
        return self.value.lower() in _TRUE

    @property
    def has_error(self) -> bool:
        """This field or one inside it has a problem (its fieldset opens)."""
        return bool(self.error) or any(c.has_error for c in self.children)


@dataclass(frozen=True, slots=True)
class Form:
    """A form that calls one catalogue action."""

    action: str
    fields: tuple[FormField, ...]
    hidden: Mapping[str, str]
    submit: str
    errors: tuple[str, ...] = ()
    message: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _fields(model: type[BaseModel]) -> dict[str, tuple[FieldInfo, Shape]]:
    return {
        wire_name(name, info): (info, shape_of(info)) for name, info in model.model_fields.items()
    }


# -- prefilled values --------------------------------------------------------------


def scalar_text(value: Any) -> str:
    """How a stored value reads in an input: whole numbers without ``.0``, times in
    UTC as ``datetime-local`` inputs take them, enums by value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)


def values_of(
    model: type[BaseModel], data: Mapping[str, Any], prefix: str = ""
) -> dict[str, list[str]]:
    """``data`` (an output's fields, say) as the strings a form of ``model`` shows."""
    flat: dict[str, list[str]] = {}
    for key, (_, shape) in _fields(model).items():
        if key not in data:
            continue
        name, value = prefix + key, data[key]
        if shape.kind in (Kind.GROUP, Kind.OPTIONAL_GROUP) and shape.model is not None:
            if value is not None:
                flat[name] = ["on"]
                flat.update(values_of(shape.model, value, name + "."))
        elif shape.kind is Kind.ROWS and shape.model is not None:
            for index, row in enumerate(value or ()):
                flat.update(values_of(shape.model, row, f"{name}.{index}."))
        elif shape.kind is Kind.CHOICES:
            flat[name] = [scalar_text(v) for v in value or ()]
        elif shape.kind is Kind.LIST:
            flat[name] = [", ".join(scalar_text(v) for v in value or ())]
        elif shape.kind is Kind.JSON:
            flat[name] = [_json_text(value, shape)]
        else:
            flat[name] = [scalar_text(value)]
    return flat


def _json_text(value: Any, shape: Shape) -> str:
    if value is None:
        return ""
    if shape.loose and isinstance(value, str):
        return value
    return json.dumps(value, indent=2, default=str)


# -- building ------------------------------------------------------------------------


def build_form(
    action: str,
    model: type[BaseModel],
    *,
    submit: str,
    hidden: Mapping[str, str] | None = None,
    only: Sequence[str] | None = None,
    values: Submitted | None = None,
    problems: Sequence[tuple[str, str]] = (),
    message: str = "",
    extra: Mapping[str, Any] | None = None,
) -> Form:
    """A form for ``action`` over ``model``: the fields named in ``only`` (in that
    order; default: every field not in ``hidden``), prefilled from ``values``, with
    ``problems`` (field path, message) beside their fields."""
    hidden = dict(hidden or {})
    specs = _fields(model)
    names = list(only) if only is not None else [n for n in specs if n not in hidden]
    built = tuple(_field(n, specs[n], values or {}, "") for n in names)
    placed, loose = place_problems(built, problems)
    return Form(action, placed, hidden, submit, tuple(loose), message, dict(extra or {}))


def _field(key: str, spec: tuple[FieldInfo, Shape], values: Submitted, prefix: str) -> FormField:
    info, shape = spec
    name = prefix + key
    required = info.is_required() and shape.kind not in (Kind.FLAG, Kind.GROUP)
    given = tuple(values.get(name, ()))
    if not given and not info.is_required() and name not in values:
        given = _default_text(info, shape)
    children: tuple[FormField, ...] = ()
    if shape.kind in (Kind.GROUP, Kind.OPTIONAL_GROUP) and shape.model is not None:
        sub = _fields(shape.model)
        children = tuple(_field(k, s, values, name + ".") for k, s in sub.items())
    elif shape.kind is Kind.ROWS and shape.model is not None:
        children = _rows(name, shape.model, values)
    return FormField(
        name=name,
        label=label_of(key),
        kind=shape.kind,
        required=required,
        help=info.description or "",
        values=given,
        options=shape.options,
        attrs=shape.limits,
        children=children,
    )


def _default_text(info: FieldInfo, shape: Shape) -> tuple[str, ...]:
    if shape.kind in (Kind.GROUP, Kind.OPTIONAL_GROUP, Kind.ROWS):
        return ()
    default = info.get_default(call_default_factory=True)
    if default is None or default == [] or shape.kind is Kind.JSON:
        return ()
    if shape.kind is Kind.CHOICES:
        return tuple(scalar_text(v) for v in default)
    if shape.kind is Kind.LIST:
        return (", ".join(scalar_text(v) for v in default),)
    return (scalar_text(default),)


def _rows(name: str, model: type[BaseModel], values: Submitted) -> tuple[FormField, ...]:
    """The rows already given, and one blank row to add another."""
    indexes = {int(k.split(".")[0]) for k in _under(values, name) if k.split(".")[0].isdigit()}
    count = (max(indexes) + 1 if indexes else 0) + 1
    sub = _fields(model)
    rows = []
    for index in range(count):
        row_name = f"{name}.{index}"
        cells = tuple(_field(k, s, values, row_name + ".") for k, s in sub.items())
        rows.append(FormField(row_name, f"{index + 1}", Kind.GROUP, False, "", (), children=cells))
    return tuple(rows)


def _under(values: Submitted, name: str) -> list[str]:
    start = name + "."
    return [k[len(start) :] for k in values if k.startswith(start)]


def place_problems(
    fields: tuple[FormField, ...], problems: Sequence[tuple[str, str]]
) -> tuple[tuple[FormField, ...], list[str]]:
    """Attach each problem to the deepest field whose name is a prefix of its path;
    the ones that name no rendered field are returned for the top of the form."""
    names = _all_names(fields)
    assigned: dict[str, list[str]] = {}
    loose: list[str] = []
    for path, message in problems:
        owner = _owner(path, names)
        if owner is None:
            loose.append(f"{path}: {message}" if path else message)
        else:
            assigned.setdefault(owner, []).append(message)
    return tuple(_with_errors(f, assigned) for f in fields), loose


def _all_names(fields: Iterable[FormField]) -> set[str]:
    names: set[str] = set()
    for f in fields:
        names.add(f.name)
        names |= _all_names(f.children)
    return names


def _owner(path: str, names: set[str]) -> str | None:
    parts = path.split(".") if path else []
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in names:
            return candidate
    return None


def _with_errors(f: FormField, assigned: Mapping[str, list[str]]) -> FormField:
    children = tuple(_with_errors(c, assigned) for c in f.children)
    error = " ".join(assigned.get(f.name, ()))
    if not error and children == f.children:
        return f
    return FormField(
        f.name, f.label, f.kind, f.required, f.help, f.values, f.options, f.attrs, children, error
    )


# -- reading a submission ---------------------------------------------------------------


def payload(model: type[BaseModel], submitted: Submitted, prefix: str = "") -> dict[str, Any]:
    """The action input a submission stands for (module docstring). Text that must be
    JSON and is not raises ``InvalidInput`` naming the field. Numbers arrive as text and
    are read as numbers where the model takes them (``decode_text``), since actions
    validate JSON types strictly."""
    problems: list[tuple[str, str]] = []
    data = _read_model(model, submitted, prefix, problems)
    if problems:
        raise errors.InvalidInput(problems)
    return decode_text(model, data) if not prefix else data


def _read_model(
    model: type[BaseModel], submitted: Submitted, prefix: str, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, (_, shape) in _fields(model).items():
        name = prefix + key
        present, value = _read(name, shape, submitted, problems)
        if present:
            data[key] = value
    return data


def _last(submitted: Submitted, name: str) -> str | None:
    given = submitted.get(name)
    return given[-1].strip() if given else None


def _read(
    name: str, shape: Shape, submitted: Submitted, problems: list[tuple[str, str]]
) -> tuple[bool, Any]:
    """(whether the field was given, its value)."""
    if shape.kind is Kind.GROUP and shape.model is not None:
        if not _under(submitted, name):
            return False, None
        return True, _read_model(shape.model, submitted, name + ".", problems)
    if shape.kind is Kind.OPTIONAL_GROUP and shape.model is not None:
        toggle = _last(submitted, name)
        if toggle is None and not _under(submitted, name):
            return False, None
        # No toggle but fields under it (a post by hand, not the form): they count.
        if toggle is not None and toggle.lower() not in _TRUE:
            return True, None
        return True, _read_model(shape.model, submitted, name + ".", problems)
    if shape.kind is Kind.ROWS and shape.model is not None:
        return _read_rows(name, shape.model, submitted, problems)
    if shape.kind is Kind.CHOICES:
        if name not in submitted:
            return False, None
        return True, [v for v in submitted[name] if v.strip()]
    text = _last(submitted, name)
    if text is None:
        return False, None
    if text == "" and shape.kind is not Kind.LIST:
        return (True, None) if shape.nullable else (False, None)
    return True, _convert(name, text, shape, problems)


def _convert(name: str, text: str, shape: Shape, problems: list[tuple[str, str]]) -> Any:
    if shape.kind is Kind.FLAG:
        return text.lower() in _TRUE
    if shape.kind is Kind.TIME:
        return _utc_text(text)
    if shape.kind is Kind.LIST:
        items = [item.strip() for item in text.split(",") if item.strip()]
        return None if not items and shape.nullable else items
    if shape.kind is Kind.JSON:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if shape.loose:
                return text
            problems.append((name, f"This is not valid JSON: {exc.msg} (line {exc.lineno})."))
            return None
    return text


def _utc_text(text: str) -> str:
    """A ``datetime-local`` value has no offset; the dashboard shows and takes UTC."""
    has_offset = text.endswith(("Z", "z")) or "+" in text[10:] or "-" in text[10:]
    return text if has_offset else text + "Z"


def _read_rows(
    name: str, model: type[BaseModel], submitted: Submitted, problems: list[tuple[str, str]]
) -> tuple[bool, Any]:
    """The rows filled in (blank ones, like the spare row a form offers, are left out)."""
    keys = _under(submitted, name)
    if not keys:
        return False, None
    indexes = sorted({int(k.split(".")[0]) for k in keys if k.split(".")[0].isdigit()})
    rows = []
    for index in indexes:
        row = f"{name}.{index}"
        if _filled_in(submitted, row):
            rows.append(_read_model(model, submitted, row + ".", problems))
    return True, rows


def _filled_in(submitted: Submitted, row: str) -> bool:
    # A checkbox's hidden "false" companion does not make a row count as filled in.
    return any(
        value.strip() and value.lower() not in ("false", "off")
        for key in _under(submitted, row)
        for value in submitted.get(f"{row}.{key}", ())
    )
