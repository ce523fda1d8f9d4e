"""The LLM planner's tools.

**From the catalogue**: every action flagged ``planner_tool`` (``PLANNER_TOOLS``)
becomes a tool with its name, description and input schema, except that
``endpoint_id`` becomes ``endpoint``: this endpoint or a sibling in its job, by name
(or id). Arguments are validated by the action's input model, strictly, as on every
surface; invalid ones go back to the model to retry and are never applied.

* A tool whose action changes a schedule hands an ``Intent`` to the sink, which
  checks the target, clamps, holds back no-ops and applies through the catalogue
  or queues for approval; the answer is the sink's verdict in words, so the model
  learns what happened and why. ``INTENTS`` says how each such action's input
  becomes an intent.
* A read-only one runs the action as the planner and answers its result.

**Planner-only reads** (not public actions): the latest response of the endpoint or
a sibling, the endpoint's response history (paged) and the siblings' latest
responses.

Every answer is cut to ``RESULT_CHARS`` characters, response bodies to
``BODY_CHARS``, so one verbose endpoint cannot fill the model's context.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic_ai import ModelRetry, RunContext, Tool

from cadenza.actions import PLANNER_TOOLS
from cadenza.actions.base import AnyAction, invoke_parsed
from cadenza.actions.endpoints import EndpointChangeInput
from cadenza.actions.hints import IntervalHintInput, OneShotInput, PauseEndpointInput
from cadenza.actions.inputs import validate_model
from cadenza.domain import errors
from cadenza.domain.model import Endpoint, Run
from cadenza.domain.planning import ToolCall, Verb
from cadenza.planner.port import Intent, Observation, Sink, Verdict
from cadenza.ports import RunFilter

BODY_CHARS = 2000
RESULT_CHARS = 8000
HISTORY_PAGE = 10
ENDPOINT_ARGUMENT = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "description": "This endpoint or a sibling in its job, by name.",
}


@dataclass(slots=True)
class ToolDeps:
    """What the tools work with during one analysis; ``calls`` records each write."""

    obs: Observation
    sink: Sink
    calls: list[ToolCall] = field(default_factory=list)


def _interval(data: BaseModel, target: str, _now: datetime) -> Intent:
    assert isinstance(data, IntervalHintInput)
    return Intent(
        Verb.INTERVAL_HINT,
        target,
        interval=timedelta(seconds=data.interval_seconds),
        ttl=timedelta(seconds=data.ttl_seconds),
        reason=data.reason,
        origin="llm",
    )


def _one_shot(data: BaseModel, target: str, now: datetime) -> Intent:
    assert isinstance(data, OneShotInput)
    at = data.run_at or now + timedelta(seconds=data.delay_seconds or 0)
    return Intent(Verb.ONE_SHOT, target, at=at, reason=data.reason, origin="llm")


def _pause(data: BaseModel, target: str, _now: datetime) -> Intent:
    assert isinstance(data, PauseEndpointInput)
    if data.until is None:
        return Intent(Verb.RESUME, target, reason=data.reason, origin="llm")
    return Intent(Verb.PAUSE, target, at=data.until, reason=data.reason, origin="llm")


def _clear(data: BaseModel, target: str, _now: datetime) -> Intent:
    assert isinstance(data, EndpointChangeInput)
    return Intent(Verb.CLEAR_HINTS, target, reason=data.reason, origin="llm")


IntentOf = Callable[[BaseModel, str, datetime], Intent]

INTENTS: dict[str, IntentOf] = {
    "apply_interval_hint": _interval,
    "schedule_one_shot_run": _one_shot,
    "pause_or_resume_endpoint": _pause,
    "clear_adaptive_hints": _clear,
}
"""How the input of each schedule-changing planner tool becomes an intent."""


def planner_tools() -> list[Tool[ToolDeps]]:
    """Every tool the LLM planner is offered (module docstring)."""
    missing = [a.name for a in PLANNER_TOOLS if a.mutates and a.name not in INTENTS]
    if missing:
        raise LookupError(f"Planner tools without an intent: {missing}")
    catalogue = [_catalogue_tool(action) for action in PLANNER_TOOLS]
    reads = [
        Tool(latest_response, takes_ctx=True),
        Tool(response_history, takes_ctx=True),
        Tool(siblings_latest_responses, takes_ctx=True),
    ]
    return [*catalogue, *reads]


def tool_schema(action: AnyAction) -> dict[str, Any]:
    """The action's input schema with ``endpoint`` in place of ``endpoint_id``."""
    schema: dict[str, Any] = action.input_model.model_json_schema()
    properties = {"endpoint": ENDPOINT_ARGUMENT}
    properties.update({k: v for k, v in schema["properties"].items() if k != "endpoint_id"})
    schema["properties"] = properties
    required = [r for r in schema.get("required", []) if r != "endpoint_id"]
    schema["required"] = ["endpoint", *required]
    return schema


def _catalogue_tool(action: AnyAction) -> Tool[ToolDeps]:
    async def call(ctx: RunContext[ToolDeps], **arguments: Any) -> str:
        return await call_action(ctx.deps, action, arguments)

    return Tool.from_schema(
        call,
        name=action.name,
        description=f"{action.summary}. {action.description}",
        json_schema=tool_schema(action),
        takes_ctx=True,
    )


async def call_action(deps: ToolDeps, action: AnyAction, arguments: dict[str, Any]) -> str:
    """One call of a catalogue tool (module docstring)."""
    given = dict(arguments)
    endpoint = given.pop("endpoint", None)
    if not isinstance(endpoint, str) or not endpoint:
        raise ModelRetry("endpoint: give this endpoint's or a sibling's name.")
    target = deps.obs.resolve(endpoint)
    try:
        data = validate_model(action.input_model, {**given, "endpoint_id": _id_of(target)})
    except errors.InvalidInput as exc:
        raise ModelRetry("; ".join(f"{f or 'arguments'}: {m}" for f, m in exc.problems)) from None
    if action.mutates:
        intent = INTENTS[action.name](data, endpoint, deps.obs.now)
        return await submit(deps, action.name, intent, {"endpoint": endpoint, **given})
    if target is None or deps.obs.context is None:
        return capped({"error": f"{endpoint!r} is not this endpoint or a sibling in its job."})
    out = await invoke_parsed(action, deps.obs.context, data)
    return capped(out.model_dump(mode="json") if isinstance(out, BaseModel) else out)


def _id_of(target: Endpoint | None) -> str:
    # An unknown name still validates; the sink refuses it and records why.
    return target.id if target is not None else "unknown"


async def submit(deps: ToolDeps, name: str, intent: Intent, arguments: dict[str, Any]) -> str:
    verdict: Verdict = await deps.sink.submit(intent)
    deps.calls.append(ToolCall(name, arguments, verdict.status))
    return capped(f"{verdict.status}: {verdict.message}")


def capped(value: Any) -> str:
    """``value`` as text (JSON unless it is text), cut to ``RESULT_CHARS``."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= RESULT_CHARS:
        return text
    return f"{text[:RESULT_CHARS]}… [cut: {len(text)} characters in all]"


def run_view(run: Run, *, body: bool = True) -> dict[str, Any]:
    """A run as the model sees it."""
    view: dict[str, Any] = {
        "run_id": run.id,
        "started_at": run.started_at.isoformat(),
        "status": run.status.value,
        "http_status": run.http_status,
        "duration_seconds": round(run.duration.total_seconds(), 3),
    }
    if run.error:
        view["error"] = run.error[:500]
    if body and run.response is not None:
        text = run.response.body.decode("utf-8", "replace")
        view["body"] = text[:BODY_CHARS]
        view["body_truncated"] = run.response.truncated or len(text) > BODY_CHARS
    return view


def endpoint_view(endpoint: Endpoint, now: datetime) -> dict[str, Any]:
    """An endpoint's identity and schedule state, without secrets or the request."""
    hint = endpoint.interval_hint
    guard = endpoint.guardrails
    pause = endpoint.pause
    return {
        "name": endpoint.name,
        "tier": endpoint.tier,
        "description": endpoint.description,
        "paused": endpoint.paused(now),
        "paused_until": pause.until.isoformat() if pause and pause.until else None,
        "next_run_at": endpoint.next_run_at.isoformat() if endpoint.next_run_at else None,
        "next_run_source": endpoint.next_run_source,
        "failure_count": endpoint.failure_count,
        "min_interval_seconds": guard.min_interval.total_seconds() if guard.min_interval else None,
        "max_interval_seconds": guard.max_interval.total_seconds() if guard.max_interval else None,
        "interval_hint_seconds": hint.interval.total_seconds()
        if hint is not None and hint.fresh(now)
        else None,
    }


EndpointName = Annotated[str, Field(min_length=1, max_length=200)]


async def latest_response(ctx: RunContext[ToolDeps], endpoint: EndpointName | None = None) -> str:
    """The latest run and response of this endpoint, or of a sibling by name."""
    obs = ctx.deps.obs
    target = obs.endpoint if endpoint is None else obs.resolve(endpoint)
    if target is None:
        return capped({"error": f"{endpoint!r} is not this endpoint or a sibling in its job."})
    runs = obs.runs if target.id == obs.endpoint.id else obs.sibling_runs.get(target.id, ())
    return capped({"endpoint": target.name, "latest": run_view(runs[0]) if runs else None})


async def response_history(
    ctx: RunContext[ToolDeps],
    cursor: Annotated[str, Field(max_length=200)] | None = None,
    limit: Annotated[int, Field(ge=1, le=HISTORY_PAGE)] = HISTORY_PAGE,
) -> str:
    """This endpoint's earlier runs, newest first; pass next_cursor for more."""
    obs = ctx.deps.obs
    if obs.context is None:
        return capped({"items": [run_view(r) for r in obs.runs[:limit]], "next_cursor": None})
    planner = obs.context
    async with planner.store.transaction(readonly=True) as tx:
        page = await tx.list_runs(
            planner.tenant_id, RunFilter(endpoint_id=obs.endpoint.id), cursor=cursor, limit=limit
        )
    return capped({"items": [run_view(r) for r in page.items], "next_cursor": page.next_cursor})


async def siblings_latest_responses(ctx: RunContext[ToolDeps]) -> str:
    """Every sibling endpoint in the job: its state and latest response."""
    obs = ctx.deps.obs
    views = []
    for sibling in obs.siblings:
        runs = obs.sibling_runs.get(sibling.id, ())
        view = endpoint_view(sibling, obs.now)
        view["latest"] = run_view(runs[0]) if runs else None
        views.append(view)
    return capped(views)
