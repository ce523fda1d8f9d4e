"""``cadenza apply -f FILE`` and ``cadenza export [JOB…]``: jobs as code in YAML.

``apply`` reads a YAML (or JSON) manifest, fills the ``${NAME}`` references of its
URLs and header values from the environment (``${NAME:-default}`` when unset), and
sends it whole to the server's ``apply_manifest`` action, which applies it all or
nothing. Problems are printed with their line in the file. ``export`` writes the
manifest of what exists as YAML, leaving out every value that is the default, with
each secret header value as a ``${NAME}`` reference.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import typer
import yaml
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from cadenza.actions import BY_NAME
from cadenza.actions.manifest_models import REFERENCE, Manifest
from cadenza.cli import exits, output
from cadenza.cli.client import ApiClient, CliError
from cadenza.cli.profiles import resolve

SCHEMA_PATH = "/api/v1/schemas/manifest.json"
# libyaml's parser when PyYAML was built with it: a bulk manifest parses ~10x faster.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Profile = Annotated[
    str | None, typer.Option("--profile", help="A profile of the config file.", show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]


class ManifestFile:
    """A manifest's text, its parsed value, and where each of its paths starts."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        loader = _LOADER(text)
        try:
            self.root: Any = loader.get_single_node()
            data = None if self.root is None else loader.construct_document(self.root)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{name}:{mark.line + 1}: " if mark is not None else f"{name}: "
            raise CliError(f"{where}not valid YAML: {exc}", exits.BAD_INPUT) from None
        finally:
            loader.dispose()
        if not isinstance(data, dict):
            raise CliError(f"{name}: a manifest is a mapping with version and jobs.", 2)
        self.data: dict[str, Any] = data

    @classmethod
    def read(cls, path: str) -> ManifestFile:
        if path == "-":
            return cls("<stdin>", sys.stdin.read())
        try:
            return cls(path, Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"Cannot read {path}: {exc.strerror}.", exits.BAD_INPUT) from None

    def line(self, path: str) -> int | None:
        """The line where dotted ``path`` (``jobs.0.name``) starts, or its nearest
        enclosing node that exists."""
        node: Any = self.root
        line = None if node is None else node.start_mark.line + 1
        for part in path.split(".") if path else []:
            node = _child(node, part)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    def locate(self, field_errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Field errors of the server, each named by its path in the file and line."""
        located = []
        for field, message in field_errors:
            path = field.removeprefix("manifest.").removeprefix("manifest")
            line = self.line(path)
            where = f"{self.name}:{line}" if line else self.name
            located.append((f"{where}: {path or '(manifest)'}", message))
        return located


def _child(node: Any, part: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        return next((value for key, value in node.value if key.value == part), None)
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        return node.value[int(part)]
    return None


def fill_references(data: dict[str, Any], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """Replace ``${NAME}`` in every URL and header value, in place; the problems
    (unset variables) by path."""
    problems: list[tuple[str, str]] = []
    for path, holder, key in _fillable(data):
        value = holder[key]
        if not isinstance(value, str):
            continue

        def fill(match: Any, path: str = path) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return str(default)
            problems.append((path, f"The environment variable {name} is not set."))
            return str(match.group(0))

        holder[key] = REFERENCE.sub(fill, value)
    return problems


def _fillable(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    for j, job in _items(data.get("jobs")):
        for e, endpoint in _items(job.get("endpoints")):
            request = endpoint.get("request")
            if not isinstance(request, dict):
                continue
            where = f"jobs.{j}.endpoints.{e}.request"
            if "url" in request:
                yield f"{where}.url", request, "url"
            for h, header in _items(request.get("headers")):
                if "value" in header:
                    yield f"{where}.headers.{h}.value", header, "value"


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        yield from ((i, item) for i, item in enumerate(value) if isinstance(item, dict))


def apply(
    file: Annotated[
        str, typer.Option("--file", "-f", help="The manifest (YAML or JSON); - for stdin.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the changes; change nothing.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Also archive jobs and endpoints the file does not name."),
    ] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "",
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Create or update jobs, endpoints and planner rules to match a manifest.

    All or nothing: one bad field refuses the whole file. Applying the same file
    again changes nothing. References ${NAME} in URLs and header values are filled
    from the environment (${NAME:-default} when it is unset).
    """
    manifest = None
    try:
        manifest = ManifestFile.read(file)
        problems = fill_references(manifest.data, os.environ)
        if problems:
            raise CliError("The manifest refers to unset variables.", exits.BAD_INPUT, problems)
        payload = {"manifest": manifest.data, "dry_run": dry_run, "prune": prune, "reason": reason}
        with ApiClient(resolve(profile)) as client:
            result = client.call(BY_NAME["apply_manifest"], payload)
    except CliError as exc:
        located = manifest.locate(exc.field_errors) if manifest else exc.field_errors
        output.print_error(exc.message, located)
        raise typer.Exit(exc.code) from None
    if as_json:
        output.print_json(result)
    else:
        print_changes(result)


def print_changes(result: dict[str, Any]) -> None:
    """One line per change (``+`` create, ``~`` update, ``-`` archive), its fields
    below it, and the counts."""
    console = output.stdout()
    marks = {"create": "[green]+[/]", "update": "[yellow]~[/]", "archive": "[red]-[/]"}
    for change in result["changes"]:
        name = change["job"] + (f"/{change['endpoint']}" if change["endpoint"] else "")
        what = "planner settings of" if change["kind"] == "planner" else change["kind"]
        console.print(f"{marks[change['op']]} {change['op']} {what} {output.escape(name)}")
        for item in change["fields"]:
            before, after = output.cell(item["before"]), output.cell(item["after"])
            console.print(f"    {output.escape(item['field'])}: {before} -> {after}")
    counts = (
        f"{result['created']} created, {result['updated']} updated, "
        f"{result['archived']} archived, {result['unchanged']} unchanged"
    )
    suffix = " (dry run: nothing was changed)" if result["dry_run"] else ""
    console.print(counts + suffix)


def export(
    jobs: Annotated[
        list[str] | None, typer.Argument(help="Names or ids of jobs; none: every live job.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Write the manifest of existing jobs as YAML (secrets as ${NAME} references)."""
    try:
        connection = resolve(profile)
        with ApiClient(connection) as client:
            result = client.call(BY_NAME["export_manifest"], {"jobs": list(jobs or [])})
    except CliError as exc:
        output.print_error(exc.message, exc.field_errors)
        raise typer.Exit(exc.code) from None
    document = compact(result)
    text = (
        output.json_text(document) if as_json else to_yaml(document, connection.url + SCHEMA_PATH)
    )
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def compact(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the values that are its format's defaults; fields typed
    as one literal value (``version``, the ``kind`` of a condition) stay, because
    they say which shape the rest has."""
    document = _compact(Manifest.model_validate(manifest))
    assert isinstance(document, dict)
    return document


def _compact(value: Any) -> Any:
    if isinstance(value, BaseModel):
        kept: dict[str, Any] = {}
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            marker = get_origin(info.annotation) is Literal and len(get_args(info.annotation)) == 1
            if marker or item != info.get_default(call_default_factory=True):
                kept[info.alias or name] = _compact(item)
        return kept
    if isinstance(value, list):
        return [_compact(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return to_jsonable_python(value)


def to_yaml(document: dict[str, Any], schema_url: str) -> str:
    body = yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)
    return f"# yaml-language-server: $schema={schema_url}\n{body}"
