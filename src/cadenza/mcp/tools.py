"""Each action's MCP tool definition, generated from the registry and kept compact.

``tools/list`` goes into an agent's context whole, so a tool says what a model needs
to choose and call it and nothing twice:

* the name is the action's; the title its summary;
* the description is the action's own text plus its structured examples (those that
  show more than an id), and for a streaming action how the sample is bounded;
* the input schema is the input model's JSON Schema without generated titles,
  field examples, ``null`` defaults, OpenAPI discriminators and the repeated
  ``additionalProperties: false``, and without the descriptions that many tools
  share (``reason``, ``cursor``, ``limit``, times …): those, and that unknown
  fields are refused, are said once in the server instructions (``glossary_text``);
* a model whose schema an action publishes (``PUBLISHED_SCHEMAS``: the manifest)
  is named, not inlined: it would be most of the list;
* the output schema names the result's top-level fields and their JSON types; the
  full schemas are in ``describe_service_catalog`` and ``cadenza://catalog``;
* the annotations come from the action's flags.

A caller is shown only the tools its scopes allow (``visible``).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cadenza.actions import REGISTRY
from cadenza.actions.base import AnyAction
from cadenza.actions.wire import EXAMPLE_IDS
from cadenza.domain.identity import Scope, grants
from cadenza.mcp.calls import SAMPLE_MAX_ITEMS, SAMPLE_MAX_SECONDS, SAMPLE_SCHEMA

GLOSSARY_MIN_TOOLS = 3
"""A field description shared by at least this many tools moves to the glossary."""
PUBLISHED_SCHEMAS = {"Manifest": "get_manifest_schema"}
"""Input models whose JSON Schema the named action returns."""
_DROPPED_KEYS = frozenset({"title", "examples", "discriminator"})
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as the server lists it, free of the MCP SDK's types."""

    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    scopes: frozenset[Scope]


def visible(specs: Iterable[ToolSpec], scopes: frozenset[Scope]) -> list[ToolSpec]:
    """The tools a caller holding ``scopes`` may call, in registry order."""
    return [spec for spec in specs if grants(scopes, spec.scopes)]


@functools.cache
def registry_tools() -> tuple[ToolSpec, ...]:
    # JSON Schema generation takes a noticeable fraction of a second for the whole
    # registry, which never changes in a process: every server shares one computation.
    shared = shared_descriptions()
    return tuple(tool_spec(action, shared) for action in REGISTRY)


def tool_spec(action: AnyAction, shared: frozenset[str]) -> ToolSpec:
    output = (
        SAMPLE_SCHEMA
        if action.streams
        else top_level_schema(action.output_model.model_json_schema(mode="serialization"))
    )
    return ToolSpec(
        name=action.name,
        title=action.summary,
        description=tool_description(action),
        input_schema=compact_input(action.input_model.model_json_schema(), shared),
        output_schema=output,
        read_only=read_only(action),
        destructive=action.destructive,
        idempotent=action.idempotent,
        scopes=action.scopes,
    )


def read_only(action: AnyAction) -> bool:
    """Advertised read-only: it changes nothing in Cadenza *and* is idempotent.

    An action that changes no Cadenza state yet is not idempotent (``test_endpoint``
    sends a real request to its target) has effects elsewhere, so a client must not
    treat it as safe to call freely.
    """
    return not action.mutates and action.idempotent


def tool_description(action: AnyAction) -> str:
    """The action's description, its examples as tool arguments, and stream bounds."""
    parts = [action.description.strip()]
    for example in action.examples:
        if set(example.arguments) <= set(EXAMPLE_IDS):
            continue  # ids alone: the schema already says it
        label = f"Example ({example.note.rstrip('.')})" if example.note else "Example"
        parts.append(f"{label}: {json.dumps(example.arguments, ensure_ascii=False)}")
    if action.streams:
        parts.append(
            f"Returns a sample, not a stream: at most {SAMPLE_MAX_ITEMS} items read for "
            f"at most {SAMPLE_MAX_SECONDS:g} s; truncated=true means there was more."
        )
    return "\n".join(parts)


@functools.cache
def shared_descriptions() -> frozenset[str]:
    """Descriptions found in the input schemas of at least ``GLOSSARY_MIN_TOOLS`` tools:
    said once in the instructions (``glossary_text``), left out of every schema."""
    uses: Counter[str] = Counter()
    for action in REGISTRY:
        uses.update(_descriptions(action.input_model.model_json_schema()))
    return frozenset(text for text, count in uses.items() if count >= GLOSSARY_MIN_TOOLS)


def glossary_text() -> str:
    """The shared descriptions as a paragraph of the server instructions, each under
    the names of the top-level fields that carry it."""
    names: dict[str, set[str]] = {text: set() for text in shared_descriptions()}
    for action in REGISTRY:
        properties = action.input_model.model_json_schema().get("properties", {})
        for name, prop in properties.items():
            if prop.get("description") in names:
                names[prop["description"]].add(name)
    entries = sorted(
        f"{', '.join(sorted(fields))}: {text}" if fields else text for text, fields in names.items()
    )
    return (
        "Fields described once for every tool: "
        + " ".join(entry if entry.endswith(".") else entry + "." for entry in entries)
        + " Objects refuse fields they do not declare."
    )


def _descriptions(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _descriptions(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                found.add(value)
            else:
                found |= _descriptions(value)
    return found


def compact_input(schema: Mapping[str, Any], shared: frozenset[str]) -> dict[str, Any]:
    """``schema`` with published models named, then without generated titles, field
    examples, ``null`` defaults, discriminators, closed-object markers and the shared
    descriptions, with nullable types written as type lists."""
    compacted: dict[str, Any] = _compact(_name_published(schema), shared)
    return compacted


def _name_published(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with each published model's definition replaced by a pointer to the
    action that returns it, and the definitions only it used left out."""
    defs = dict(schema.get("$defs", {}))
    for model, action in PUBLISHED_SCHEMAS.items():
        if model in defs:
            defs[model] = {"type": "object", "description": f"JSON Schema: {action}."}
    root = {key: value for key, value in schema.items() if key != "$defs"}
    used = _reachable(root, defs)
    if used:
        root["$defs"] = {name: body for name, body in defs.items() if name in used}
    return root


def _reachable(root: Mapping[str, Any], defs: Mapping[str, Any]) -> set[str]:
    """The definitions ``root`` refers to, directly or through other definitions."""
    found: set[str] = set()
    pending = _refs(root)
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending |= _refs(defs[name])
    return found


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    own = {str(node["$ref"]).rsplit("/", 1)[-1]} if "$ref" in node else set()
    return own.union(*(_refs(value) for value in node.values()))


def _compact(node: Any, shared: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_compact(item, shared) for item in node]
    if not isinstance(node, dict):
        return node
    kept: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            kept[key] = {name: _compact(prop, shared) for name, prop in value.items()}
        elif not _dropped(key, value, shared):
            kept[key] = _compact(value, shared)
    return _nullable_as_type_list(kept)


def _dropped(key: str, value: Any, shared: frozenset[str]) -> bool:
    return (
        key in _DROPPED_KEYS
        or (key == "default" and value is None)
        or (key == "additionalProperties" and value is False)
        or (key == "description" and value in shared)
    )


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """``{"anyOf": [{"type": "string", …}, {"type": "null"}]}`` as
    ``{"type": ["string", "null"], …}``: the same values, said shorter."""
    options = node.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or {"type": "null"} not in options:
        return node
    other = options[0] if options[1] == {"type": "null"} else options[1]
    if not isinstance(other.get("type"), str) or {"enum", "const", "anyOf"} & set(other):
        return node
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    merged.update(other)
    merged["type"] = [other["type"], "null"]
    return merged


def top_level_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An object schema naming each top-level field of ``schema`` with its JSON types.

    Every value valid for ``schema`` is valid for the result, so a client that checks
    structured content against it never refuses a real result. A result always has
    every field (null where the type allows), so listing them as required too would
    only repeat the names.
    """
    defs: Mapping[str, Any] = schema.get("$defs", {})
    properties = {
        name: _types_only(prop, defs) for name, prop in schema.get("properties", {}).items()
    }
    return {"type": "object", "properties": properties}


def _types_only(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    types = _json_types(prop, defs)
    if types is None:
        return {}
    ordered = sorted(types)
    return {"type": ordered[0] if len(ordered) == 1 else ordered}


def _json_types(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema allows; ``None``: any value."""
    if "$ref" in prop:
        return _json_types(defs[str(prop["$ref"]).rsplit("/", 1)[-1]], defs)
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        found = [_json_types(option, defs) for option in options]
        return None if any(t is None for t in found) else set().union(*found)  # type: ignore[arg-type]
    values = prop.get("enum", [prop["const"]] if "const" in prop else None)
    if values is not None:
        return {_json_type_of(v) for v in values}
    declared = prop.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    if "properties" in prop or "additionalProperties" in prop:
        return {"object"}
    if "items" in prop or "prefixItems" in prop:
        return {"array"}
    return None


def _json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return _JSON_TYPES.get(type(value), "string")
