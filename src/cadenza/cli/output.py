"""How results and errors look: rich tables for people, JSON for scripts.

A page (``items`` and ``next_cursor``) is one table, a row per item; any other object
is a table of its fields (nested objects flattened as ``state.next_run_at``) followed
by one table per list of objects it holds (an explanation's steps, a preview).
Errors go to stderr: the message, then one line per offending field.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

_MAX_COLUMNS = 7
_MAX_CELL = 80
_LONG_TEXT = frozenset({"description", "note", "summary", "error", "reason"})


def stdout() -> Console:
    return Console(soft_wrap=False, highlight=False)


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def print_json(value: Any) -> None:
    sys.stdout.write(json_text(value))


def render(value: Any, columns: Sequence[str] = ()) -> None:
    """Print ``value`` for people (see the module docstring)."""
    console = stdout()
    if is_page(value):
        console.print(page_table(value["items"], columns))
        if value.get("next_cursor"):
            stderr().print(f"More: add --cursor {value['next_cursor']} (or --all).")
        return
    if not isinstance(value, dict):
        console.print(cell(value))
        return
    console.print(fields_table(value))
    for key, rows in nested_lists(value):
        console.print(page_table(rows, (), title=key))


def is_page(value: Any) -> bool:
    return (
        isinstance(value, dict) and isinstance(value.get("items"), list) and "next_cursor" in value
    )


def page_table(rows: list[Any], columns: Sequence[str], title: str | None = None) -> Table:
    chosen = list(columns) or default_columns(rows)
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for name in chosen:
        table.add_column(name.replace("_", " "), overflow="fold", max_width=_MAX_CELL)
    for row in rows:
        flat = flatten(row) if isinstance(row, dict) else {"value": row}
        table.add_row(*(cell(flat.get(name)) for name in chosen))
    if not rows:
        table.caption = "(none)"
    return table


def default_columns(rows: list[Any]) -> list[str]:
    """The first scalar fields of the first row, long texts left out."""
    if not rows or not isinstance(rows[0], dict):
        return ["value"]
    flat = flatten(rows[0])
    names = [k for k, v in flat.items() if k not in _LONG_TEXT and not isinstance(v, list)]
    return names[:_MAX_COLUMNS]


def fields_table(value: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, item in flatten(value).items():
        if isinstance(item, list) and item and isinstance(item[0], dict):
            continue  # shown as a table of its own
        table.add_row(key, cell(item))
    return table


def nested_lists(value: dict[str, Any], prefix: str = "") -> list[tuple[str, list[Any]]]:
    """Every list of objects inside ``value``, with its dotted key."""
    found: list[tuple[str, list[Any]]] = []
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            found += nested_lists(item, name + ".")
        elif isinstance(item, list) and item and isinstance(item[0], dict):
            found.append((name, item))
    return found


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and item:
            flat.update(flatten(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return str(value).replace("[", r"\[")


def print_error(message: str, field_errors: Sequence[tuple[str, str]] = ()) -> None:
    console = stderr()
    console.print(f"[bold red]Error:[/] {escape(message)}")
    for field, problem in field_errors:
        console.print(f"  {escape(field or '(input)')}: {escape(problem)}")


def escape(text: str) -> str:
    return text.replace("[", r"\[")
