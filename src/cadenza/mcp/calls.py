"""One tool call: arguments in, the action run through the catalogue, a JSON result out.

Each call goes through ``invoke`` exactly like a REST request: scopes first, then
strict validation, then the handler, for the caller's tenant only.

* Some desktop clients send an object or list argument as a JSON-encoded string;
  such a string is parsed when the field cannot take a string, which spares the
  model a pointless retry.
* A streaming action (CSV, JSON Lines, Server-Sent Events) cannot stream through a
  tool call, so its tool returns a bounded sample: at most ``SAMPLE_MAX_ITEMS``
  items (or ``SAMPLE_MAX_CHARS`` characters), read for at most
  ``SAMPLE_MAX_SECONDS`` seconds, with ``truncated`` set when the stream had more.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import anyio
from pydantic import BaseModel

from cadenza.actions import BY_NAME
from cadenza.actions.base import AnyAction, Context, LineStream, invoke

SAMPLE_MAX_ITEMS = 500
SAMPLE_MAX_CHARS = 1_000_000
SAMPLE_MAX_SECONDS = 15.0
_JSON_MEDIA = ("application/jsonl", "application/x-ndjson", "application/json")
_SSE_MEDIA = "text/event-stream"


async def run_tool(action: AnyAction, ctx: Context, arguments: Mapping[str, Any]) -> Any:
    """Run ``action`` for ``ctx`` with the tool's ``arguments``; the JSON result.

    Raises the action's domain errors unchanged, for the caller to turn into a tool
    error."""
    given = parse_stringified(_input_schema(action.name), arguments)
    result = await invoke(action, ctx, given)
    if isinstance(result, LineStream):
        return await read_sample(result)
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return action.output_model.model_validate(result).model_dump(mode="json", by_alias=True)


@functools.cache
def _input_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = BY_NAME[name].input_model.model_json_schema()
    return schema


def parse_stringified(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` with top-level JSON strings parsed where the schema wants no string."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    props: Mapping[str, Any] = schema.get("properties", {})
    parsed = dict(arguments)
    for name, value in arguments.items():
        if not isinstance(value, str) or name not in props or _takes_string(props[name], defs):
            continue
        try:
            decoded = json.loads(value)
        except ValueError:
            continue
        if isinstance(decoded, dict | list):
            parsed[name] = decoded
    return parsed


def _takes_string(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> bool:
    if "$ref" in prop:
        return _takes_string(defs[str(prop["$ref"]).rsplit("/", 1)[-1]], defs)
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        return any(_takes_string(option, defs) for option in options)
    kind = prop.get("type")
    return kind is None or kind == "string" or (isinstance(kind, list) and "string" in kind)


SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "media_type": {"type": "string"},
        "items": {"type": "array"},
        "text": {"type": ["string", "null"]},
        "truncated": {"type": "boolean"},
    },
    "required": ["media_type", "items", "text", "truncated"],
}
"""The output schema of a streaming action's tool: a bounded sample of the stream."""


async def read_sample(stream: LineStream) -> dict[str, Any]:
    """Read a bounded sample of ``stream`` (module docstring) and close it: parsed
    items for JSON Lines and Server-Sent Events, the raw text for other media."""
    items: list[Any] = []
    chunks: list[str] = []
    size = 0
    finished = False
    as_json = stream.media_type.startswith(_JSON_MEDIA)
    try:
        with anyio.move_on_after(SAMPLE_MAX_SECONDS):
            async for chunk in stream.lines:
                if stream.media_type.startswith(_SSE_MEDIA):
                    items += _sse_data(chunk)
                elif as_json:
                    items += [json.loads(line) for line in chunk.splitlines() if line.strip()]
                else:
                    chunks.append(chunk)
                size += len(chunk)
                if len(items) >= SAMPLE_MAX_ITEMS or size >= SAMPLE_MAX_CHARS:
                    break
            else:
                finished = True
    finally:
        close = getattr(stream.lines, "aclose", None)
        if close is not None:
            await close()
    text = None if as_json or stream.media_type.startswith(_SSE_MEDIA) else "".join(chunks)
    return {
        "media_type": stream.media_type,
        "items": items[:SAMPLE_MAX_ITEMS],
        "text": text,
        "truncated": not finished,
    }


def _sse_data(chunk: str) -> list[Any]:
    """The JSON ``data:`` payloads of one or more Server-Sent Events; comments skipped."""
    return [json.loads(line[5:].strip()) for line in chunk.splitlines() if line.startswith("data:")]
