"""Command-line parameters derived from an action's input fields.

Each input field becomes one parameter: an argument when it is a path parameter or
listed as positional, an option otherwise. The option's name is the field's, with
``_seconds`` and ``_id`` dropped (``--ttl 20m``, ``--endpoint EP``) and ``_`` as
``-``; a list field is repeated under its singular (``--scope a --scope b``). Values
are parsed as people type them (``cadenza.cli.values``): durations for ``…_seconds``,
RFC 3339 or relative times for times, JSON for nested objects. Every option is
optional on the command line; the server's validation of the whole input says what
is missing, as it does for every other surface.
"""

from __future__ import annotations

import enum
import inspect
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo

from cadenza.adapters.clock import SystemClock
from cadenza.cli.commands import Flag
from cadenza.cli.values import BadValue, parse_duration, parse_header, parse_json, parse_time

KW = inspect.Parameter.KEYWORD_ONLY
Write = Callable[[dict[str, Any], Any], None]
_SCALARS = (str, int, float)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a generated command and how its value enters the payload."""

    name: str
    annotation: Any
    default: Any
    write: Write
    option: str = ""

    def signature(self) -> inspect.Parameter:
        return inspect.Parameter(self.name, KW, annotation=self.annotation, default=self.default)


def parser(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` with its ``BadValue`` turned into a usage error (exit code 2)."""

    def run(text: str) -> Any:
        try:
            return parse(text)
        except BadValue as exc:
            raise typer.BadParameter(str(exc)) from None

    return run


def to_time(text: str) -> str:
    return parse_time(text, SystemClock())


def option_name(field: str) -> str:
    base = field
    for suffix in ("_seconds", "_id"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
    return base.replace("_", "-")


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def metavar(field: str) -> str:
    return option_name(field).upper()


def without_none(annotation: Any) -> Any:
    """The type under ``Annotated`` and ``| None``."""
    if get_origin(annotation) is Annotated:
        return without_none(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return without_none(rest[0]) if len(rest) == 1 else annotation
    return annotation


def choices(annotation: Any) -> type[enum.Enum] | None:
    """An enum for an enum or a ``Literal`` of strings, else ``None``."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if get_origin(annotation) is Literal and all(isinstance(v, str) for v in get_args(annotation)):
        values = get_args(annotation)
        return enum.Enum("Choice", {v: v for v in values}, type=str)  # type: ignore[return-value]
    return None


def field_param(name: str, info: FieldInfo, *, argument: bool, option: str = "") -> Param:
    """The parameter of input field ``name`` (see the module docstring)."""
    kind = without_none(info.annotation)
    help_text = _help(name, info, argument)
    element = get_args(kind)[0] if get_origin(kind) is list and get_args(kind) else None
    if element is not None and (choices(element) or element in _SCALARS):
        element_type = choices(element) or element
        flag = option or singular(option_name(name))
        decl = typer.Option(f"--{flag}", help=help_text, show_default=False)
        return Param(f"f_{name}", Annotated[list[element_type] | None, decl], None, _set(name))  # type: ignore[valid-type]
    value_type, parse, shown = _scalar(name, kind)
    if argument:
        decl_arg = typer.Argument(metavar=metavar(name), help=help_text, show_default=False)
        if parse is not None:
            decl_arg = typer.Argument(
                metavar=metavar(name), help=help_text, parser=parse, show_default=False
            )
        return Param(
            f"f_{name}", Annotated[value_type, decl_arg], inspect.Parameter.empty, _set(name)
        )
    flag = option or option_name(name)
    decls = (f"--{flag}/--no-{flag}",) if value_type is bool else (f"--{flag}",)
    decl = typer.Option(*decls, help=help_text, parser=parse, metavar=shown, show_default=False)
    return Param(f"f_{name}", Annotated[value_type | None, decl], None, _set(name), f"--{flag}")


def _scalar(name: str, kind: Any) -> tuple[Any, Callable[[str], Any] | None, str | None]:
    """The Python type Typer parses to, a parser when Typer's own does not fit, and a
    metavar for the help."""
    if kind in (int, float) and name.endswith("_seconds"):
        return float, parser(parse_duration), "DURATION"
    if kind is AwareDatetime:
        return str, parser(to_time), "TIME"
    if isinstance(kind, type) and issubclass(kind, datetime):
        return str, parser(to_time), "TIME"
    options = choices(kind)
    if options is not None:
        return options, None, None
    if kind in (bool, int, float, str):
        return kind, None, None
    return str, parser(parse_json), "JSON"


def _help(name: str, info: FieldInfo, argument: bool) -> str:
    text = (info.description or "").replace("[", r"\[")
    if name.endswith("_seconds"):
        text = f"{text} A duration: 30s, 5m, 1h30m.".strip()
    if info.is_required() and not argument:
        text = f"{text} (required)".strip()
    return text


def _set(field: str) -> Write:
    def write(payload: dict[str, Any], value: Any) -> None:
        payload[field] = plain(value)

    return write


def plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def flag_param(flag: Flag) -> Param:
    """The parameter of a nested-field flag (``--url`` → ``request.url``)."""
    name = "x_" + flag.option.replace("-", "_")
    help_text = flag.help.replace("[", r"\[")
    many = flag.kind in ("header", "secret-header", "ints")
    if many:
        element: Any = int if flag.kind == "ints" else str
        decl = typer.Option(f"--{flag.option}", help=help_text, show_default=False)
        return Param(name, Annotated[list[element] | None, decl], None, _nested(flag))
    if flag.kind == "null":
        switch = typer.Option(f"--{flag.option}", help=help_text, show_default=False)
        return Param(name, Annotated[bool, switch], False, _nested(flag))
    value_type, parse, shown = _flag_scalar(flag)
    decl = typer.Option(
        f"--{flag.option}", help=help_text, parser=parse, metavar=shown, show_default=False
    )
    return Param(name, Annotated[value_type | None, decl], None, _nested(flag))


def _flag_scalar(flag: Flag) -> tuple[Any, Callable[[str], Any] | None, str | None]:
    if flag.kind == "duration":
        return float, parser(parse_duration), "DURATION"
    if flag.kind == "json":
        return str, parser(parse_json), "JSON"
    return (int, None, None) if flag.kind == "int" else (str, None, None)


def _nested(flag: Flag) -> Write:
    def write(payload: dict[str, Any], value: Any) -> None:
        if flag.kind == "null" and value is False:
            return  # the switch not given
        *parents, last = flag.path
        target = payload
        for key in parents:
            child = target.get(key)
            target[key] = child = dict(child) if isinstance(child, dict) else {}
            target = child
        if flag.kind in ("header", "secret-header"):
            headers = list(target.get(last) or [])
            for text in value:
                header_name, header_value = parse_header(text)
                entry: dict[str, Any] = {"name": header_name, "value": header_value}
                if flag.kind == "secret-header":
                    entry["secret"] = True
                headers.append(entry)
            target[last] = headers
        elif flag.kind == "null":
            target[last] = None
        else:
            target[last] = list(value) if isinstance(value, list) else value

    return write
