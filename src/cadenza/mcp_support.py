"""The parts of the MCP surface that need no MCP SDK: tool texts, tool errors, bounded
reads of streaming actions, and the resources agents can read.

``cadenza.mcp_server`` turns these into protocol objects. Keeping them here keeps the
SDK import in one module and lets these rules be tested without a session.

* A tool's description is the action's own text plus what a model needs to choose
  and call it: an example of its arguments (built from the input model's required
  fields and their schema examples) unless the text already shows one, the scopes it
  needs, whether it changes anything, and the units convention.
* ``TOOL_ERRORS`` is the one table from domain error types to tool errors; a subclass
  not listed takes its nearest listed ancestor's row, and the ``code`` is always the
  error class's own (the same as on REST).
* A streaming action (CSV, JSON Lines, Server-Sent Events) cannot stream through a
  tool call, so its tool returns a bounded sample: at most ``SAMPLE_MAX_ITEMS``
  items (or ``SAMPLE_MAX_CHARS`` characters), read for at most
  ``SAMPLE_MAX_SECONDS`` seconds, with ``truncated`` set when the stream had more.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import anyio
from pydantic import BaseModel, Field

from cadenza.actions.base import AnyAction, LineStream
from cadenza.actions.meta import CatalogOut, action_info
from cadenza.domain import errors

SAMPLE_MAX_ITEMS = 500
SAMPLE_MAX_CHARS = 1_000_000
SAMPLE_MAX_SECONDS = 15.0
_EXAMPLE_DEPTH = 4
_JSON_MEDIA = ("application/jsonl", "application/x-ndjson", "application/json")
_SSE_MEDIA = "text/event-stream"

UNITS_NOTE = (
    "Units: times are RFC 3339 strings in UTC (e.g. 2026-01-01T09:00:00Z); durations are "
    "seconds as numbers in fields named *_seconds; ids are opaque strings."
)


class FieldProblemOut(BaseModel):
    field: str = Field(description="Dotted path of the offending argument.")
    message: str


class ToolErrorOut(BaseModel):
    """The structured body of every tool error."""

    code: str = Field(description="Stable error code, the same as on the REST API.")
    message: str
    hint: str = Field(description="What to do about it.")
    retryable: bool = Field(description="The same call may succeed later unchanged.")
    errors: list[FieldProblemOut] | None = None
    retry_after_seconds: float | None = None

    def text(self) -> str:
        """The error as one short text block for clients that ignore structured content."""
        lines = [f"{self.code}: {self.message}"]
        lines += [f"- {p.field or '(input)'}: {p.message}" for p in self.errors or []]
        lines.append(self.hint)
        return "\n".join(lines)


TOOL_ERRORS: dict[type[errors.CadenzaError], tuple[bool, str]] = {
    errors.InvalidInput: (False, "Fix the arguments listed in errors and call again."),
    errors.ValidationError: (False, "Fix the named argument and call again."),
    errors.NotFound: (
        False,
        "No such id in your tenant. list_jobs, list_endpoints, list_runs and "
        "list_api_keys show the ids you can use.",
    ),
    errors.Archived: (False, "It is archived: its schedule is frozen; create a new one."),
    errors.Conflict: (False, "The current state forbids this; read it again and adjust."),
    errors.AuthenticationFailed: (
        False,
        "The API key is missing, unknown, revoked or expired; configure a valid cdz_ key.",
    ),
    errors.PermissionDenied: (
        False,
        "Your API key lacks a scope this tool needs; whoami lists the scopes you hold.",
    ),
    errors.RateLimited: (True, "Too many calls; wait retry_after_seconds, then retry."),
    errors.BudgetExhausted: (True, "The tenant's planner budget is used up until it refills."),
    errors.UnsafeTarget: (
        False,
        "The URL resolves to an address the SSRF guard refuses (private, loopback, "
        "metadata …); use a public address or ask the operator to allowlist it.",
    ),
    errors.PayloadTooLarge: (False, "The request is larger than the server accepts; send less."),
    errors.ServiceUnavailable: (True, "The server cannot reach its database; retry shortly."),
    errors.CadenzaError: (False, "The call cannot be served as given."),
}
"""The one table from domain error types to tool errors: (retryable, hint)."""


def tool_error(exc: errors.CadenzaError) -> ToolErrorOut:
    """The tool error for a domain error: its stable code, message and field problems."""
    retryable, hint = _error_row(exc)
    problems: list[FieldProblemOut] | None = None
    if isinstance(exc, errors.InvalidInput):
        problems = [FieldProblemOut(field=f, message=m) for f, m in exc.problems]
    elif isinstance(exc, errors.ValidationError):
        problems = [FieldProblemOut(field=exc.field, message=exc.message)]
    retry_after = exc.retry_after_seconds if isinstance(exc, errors.RateLimited) else None
    return ToolErrorOut(
        code=exc.code,
        message=exc.message,
        hint=hint,
        retryable=retryable,
        errors=problems,
        retry_after_seconds=retry_after,
    )


def _error_row(exc: errors.CadenzaError) -> tuple[bool, str]:
    for cls in type(exc).__mro__:
        row = TOOL_ERRORS.get(cls)
        if row is not None:
            return row
    return TOOL_ERRORS[errors.CadenzaError]


def internal_error() -> ToolErrorOut:
    """What an unexpected failure looks like to the model: nothing of the exception leaks."""
    return ToolErrorOut(
        code="internal_error",
        message="Cadenza failed unexpectedly; the failure is logged on the server.",
        hint="Try again later; report it if it persists.",
        retryable=True,
    )


def unknown_tool(name: str) -> ToolErrorOut:
    return ToolErrorOut(
        code="unknown_tool",
        message=f"There is no tool named {name!r}.",
        hint="List the tools, or call describe_service_catalog.",
        retryable=False,
    )


def read_only(action: AnyAction) -> bool:
    """Advertised read-only: it changes nothing in Cadenza *and* is idempotent.

    An action that changes no Cadenza state yet is not idempotent (``test_endpoint``
    sends a real request to its target) has effects elsewhere, so a client must not
    treat it as safe to call freely.
    """
    return not action.mutates and action.idempotent


def tool_description(action: AnyAction) -> str:
    """The action's description rewritten for a model choosing among tools."""
    schema = action.input_model.model_json_schema()
    parts = [action.description.strip(), _example_note(action, schema)]
    parts.append(_access_note(action))
    if _mentions_units(schema):
        parts.append(UNITS_NOTE)
    if action.streams:
        parts.append(
            f"Over MCP this returns a sample, not a stream: at most {SAMPLE_MAX_ITEMS} items "
            f"read for at most {SAMPLE_MAX_SECONDS:g} s; truncated=true means there was more."
        )
    return "\n\n".join(part for part in parts if part)


def _example_note(action: AnyAction, schema: Mapping[str, Any]) -> str:
    """Tool arguments for the example: the description's own JSON example needs only
    the ids REST takes from the path; a REST query example is rewritten as JSON; with
    no example, one is built from the schema."""
    text = action.description
    required_ids = example_arguments(schema)
    ids = {p: required_ids[p] for p in action.path_params if p in required_ids}
    query = _QUERY_EXAMPLE.search(text)
    if "example: {" in text.lower() or "example rule: {" in text.lower():
        missing = [p for p in ids if f'"{p}"' not in text]
        return f"Pass {' and '.join(missing)} in the arguments too." if missing else ""
    if query is not None:
        pairs = (pair.split("=", 1) for pair in query.group(1).split("&") if "=" in pair)
        example = {**ids, **{name: _scalar(value) for name, value in pairs}}
        return f"As tool arguments: {json.dumps(example, ensure_ascii=False)}"
    example = example_arguments(schema)
    return f"Example arguments: {json.dumps(example)}" if example else ""


_QUERY_EXAMPLE = re.compile(r"Example: ([a-z_]+=[^\s&]+(?:&[a-z_]+=[^\s&]+)*)")


def _scalar(value: str) -> Any:
    return int(value) if value.isdigit() else value


def _access_note(action: AnyAction) -> str:
    scopes = ", ".join(sorted(s.value for s in action.scopes))
    needs = f"Needs scope {scopes}." if scopes else "Any valid key may call it."
    if action.destructive:
        effect = "Destructive: removes or revokes something; confirm the id first."
    elif action.mutates:
        effect = "Changes state; audited with you as the actor, so pass a short reason."
    elif not action.idempotent:
        effect = "Changes nothing in Cadenza but acts on the outside world."
    else:
        effect = "Read-only."
    return f"{needs} {effect}"


def _mentions_units(schema: Mapping[str, Any]) -> bool:
    text = json.dumps(schema)
    return "_seconds" in text or '"date-time"' in text


def example_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments for the required fields of an input schema, from their ``examples``
    (or defaults, enum values and typed placeholders when a field has none)."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    return _example_object(schema, defs, 0)


def _example_object(
    schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int
) -> dict[str, Any]:
    required = schema.get("required", [])
    props: Mapping[str, Any] = schema.get("properties", {})
    return {name: _example_value(props[name], defs, depth + 1) for name in required}


def _example_value(prop: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> Any:
    if prop.get("examples"):
        return prop["examples"][0]
    if "default" in prop:
        return prop["default"]
    if "$ref" in prop and depth < _EXAMPLE_DEPTH:
        return _example_object(defs[str(prop["$ref"]).rsplit("/", 1)[-1]], defs, depth)
    for option in prop.get("anyOf", []):
        if option.get("type") != "null":
            return _example_value(option, defs, depth)
    if prop.get("enum"):
        return prop["enum"][0]
    placeholders = {"string": "…", "integer": 1, "number": 1, "boolean": False, "array": []}
    return placeholders.get(str(prop.get("type")), {})


def parse_stringified(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` with top-level JSON strings parsed where the schema wants no string.

    Some desktop clients send an object or list argument as a JSON-encoded string;
    parsing it when the field cannot be a string spares the model a pointless retry.
    """
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


def sample_schema(action: AnyAction) -> dict[str, Any]:
    """The output schema of a streaming action's tool: items of the action's item model."""
    item = action.output_model.model_json_schema(mode="serialization")
    defs: dict[str, Any] = item.pop("$defs", {})
    item_name = action.output_model.__name__
    defs[item_name] = item
    return {
        "type": "object",
        "title": f"{item_name}Sample",
        "description": "A bounded sample of the stream.",
        "properties": {
            "media_type": {"type": "string", "description": "The stream's media type."},
            "items": {
                "type": "array",
                "items": {"$ref": f"#/$defs/{item_name}"},
                "description": "Parsed items (JSON Lines rows, Server-Sent Events data).",
            },
            "text": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "The raw text when the media type is not JSON (e.g. CSV).",
            },
            "truncated": {"type": "boolean", "description": "The stream had more."},
        },
        "required": ["media_type", "items", "text", "truncated"],
        "$defs": defs,
    }


async def read_sample(stream: LineStream) -> dict[str, Any]:
    """Read a bounded sample of ``stream`` (see the module docstring) and close it."""
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


def catalog_json(actions: tuple[AnyAction, ...]) -> str:
    """The service catalogue (every action with its schemas) as one JSON document."""
    return CatalogOut(actions=[action_info(a) for a in actions]).model_dump_json(indent=1)


SCHEDULING_GUIDE = """\
# How Cadenza decides when an endpoint runs

Every endpoint has one baseline: a cron expression with an IANA time zone, or an
interval in seconds (at least 1). Cadenza computes the next run from it, then lets
short-lived hints and pauses bend it, always inside the endpoint's guardrails.

## The rules, in the order they apply
1. Archived endpoint or job: not scheduled.
2. Baseline. Cron: the next fire after now in the endpoint's zone (a time skipped by
   a daylight-saving jump runs right after the jump; a repeated hour runs once).
   Interval: last slot + interval, doubled per consecutive failure up to x32
   (backoff). After downtime the missed slots collapse into one run now
   (catch_up=run_once) or wait for the next slot (catch_up=skip).
3. Interval hint (apply_interval_hint): while fresh it replaces the baseline, cron
   included: next run = last run + hint interval, never before now.
4. One-shot (schedule_one_shot_run): one extra run at run_at; it wins when earlier
   than the cadence's next run, and is used up by the run that serves it.
5. Guardrails: min_interval_seconds (also the cooldown) and max_interval_seconds,
   measured from the last actual start, bound every source: baseline, backoff and
   every hint from people, agents or the planner.
6. Never in the past: a time before now becomes now.
7. Pause wins: an endpoint or job paused until T runs no earlier than T.
8. Hints expire by themselves (ttl_seconds); the baseline then rules again.

Every change (hint, pause, resume, clear, reset, configuration) replans at once:
a tighter cadence takes effect now, not after the next run.

## Choosing a tool
- Watch closely for a while: apply_interval_hint (e.g. 30 s for 3600 s).
- Run once soon: schedule_one_shot_run (delay_seconds or run_at).
- Hold off: pause_or_resume_endpoint with until; until=null resumes.
- Back to normal: clear_adaptive_hints (a pause stays until resumed).
- After a fix: reset_failure_count removes the backoff.
- Check a request without touching the schedule: test_endpoint.
- Why is the next run when it is: explain_schedule (the plan, each rule applied,
  and a preview of the next runs).
- What happened: list_runs, get_run_details, summarize_endpoint_health,
  list_audit_events (who changed what, and why).

Jobs group endpoints; pausing a job pauses all of its endpoints. Tiers (e.g. health,
investigation, recovery, alert) are labels you choose on each endpoint; a common
pattern keeps investigation endpoints paused until something looks wrong, and gives
recovery and alert endpoints a min_interval_seconds as their cooldown.

Conventions: times are RFC 3339 in UTC; durations are seconds in *_seconds fields;
every change takes an optional reason, recorded in the audit log with your identity.
"""
"""The ``cadenza://docs/scheduling`` resource: the scheduling rules for agents."""
