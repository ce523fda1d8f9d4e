"""The LLM planner's tools, as plain functions over ``ToolDeps``.

Read tools see the endpoint and its siblings in the same job only: the latest
response, a paged response history, the siblings' latest responses, and the
catalogue's ``summarize_endpoint_health``. Write tools mirror the catalogue's
planner-tool actions (interval hint, one-shot, pause/resume, clear) and submit an
``Intent`` to the sink, which checks the target, clamps, holds back no-ops and
applies through the catalogue, or queues for approval. Their answer is the sink's
verdict in words, so the model learns what happened and why.

Response bodies are cut to ``BODY_CHARS`` so one verbose endpoint cannot fill the
model's context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cadenza.actions.base import invoke
from cadenza.actions.health import ACTIONS as HEALTH_ACTIONS
from cadenza.domain.model import Endpoint, Run
from cadenza.domain.planning import ToolCall, Verb
from cadenza.planner.port import Intent, Observation, Sink, Verdict
from cadenza.ports import RunFilter

BODY_CHARS = 2000
HISTORY_PAGE = 10
_HEALTH = HEALTH_ACTIONS[0]


@dataclass(slots=True)
class ToolDeps:
    """What the tools work with during one analysis; ``calls`` records each write."""

    obs: Observation
    sink: Sink
    calls: list[ToolCall] = field(default_factory=list)


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


def endpoint_view(endpoint: Endpoint, now: Any) -> dict[str, Any]:
    """An endpoint's identity and schedule state, without secrets or the request."""
    hint = endpoint.interval_hint
    guard = endpoint.guardrails
    return {
        "name": endpoint.name,
        "tier": endpoint.tier,
        "description": endpoint.description,
        "paused": endpoint.paused(now),
        "paused_until": endpoint.pause.until.isoformat()
        if endpoint.pause is not None and endpoint.pause.until is not None
        else None,
        "next_run_at": endpoint.next_run_at.isoformat() if endpoint.next_run_at else None,
        "next_run_source": endpoint.next_run_source,
        "failure_count": endpoint.failure_count,
        "min_interval_seconds": guard.min_interval.total_seconds() if guard.min_interval else None,
        "max_interval_seconds": guard.max_interval.total_seconds() if guard.max_interval else None,
        "interval_hint_seconds": hint.interval.total_seconds()
        if hint is not None and hint.fresh(now)
        else None,
    }


def latest_response(deps: ToolDeps, endpoint: str | None = None) -> dict[str, Any]:
    obs = deps.obs
    target = obs.endpoint if endpoint is None else obs.resolve(endpoint)
    if target is None:
        return {"error": f"{endpoint!r} is not this endpoint or a sibling in its job."}
    runs = obs.runs if target.id == obs.endpoint.id else obs.sibling_runs.get(target.id, ())
    if not runs:
        return {"endpoint": target.name, "latest": None}
    return {"endpoint": target.name, "latest": run_view(runs[0])}


async def response_history(deps: ToolDeps, cursor: str | None, limit: int) -> dict[str, Any]:
    """This endpoint's runs, newest first, one page at a time."""
    obs = deps.obs
    if obs.context is None:
        return {"items": [run_view(r) for r in obs.runs[:limit]], "next_cursor": None}
    ctx = obs.context
    async with ctx.store.transaction(readonly=True) as tx:
        page = await tx.list_runs(
            ctx.tenant_id, RunFilter(endpoint_id=obs.endpoint.id), cursor=cursor, limit=limit
        )
    return {"items": [run_view(r) for r in page.items], "next_cursor": page.next_cursor}


def siblings_latest(deps: ToolDeps) -> list[dict[str, Any]]:
    obs = deps.obs
    views = []
    for sibling in obs.siblings:
        runs = obs.sibling_runs.get(sibling.id, ())
        view = endpoint_view(sibling, obs.now)
        view["latest"] = run_view(runs[0]) if runs else None
        views.append(view)
    return views


async def endpoint_health(deps: ToolDeps, endpoint: str | None, window_seconds: float) -> Any:
    obs = deps.obs
    target = obs.endpoint if endpoint is None else obs.resolve(endpoint)
    if target is None or obs.context is None:
        return {"error": f"No health available for {endpoint!r}."}
    payload = {"endpoint_id": target.id, "window_seconds": window_seconds}
    out = await invoke(_HEALTH, obs.context, payload)
    return out.model_dump(mode="json")


async def submit(deps: ToolDeps, name: str, intent: Intent, arguments: dict[str, Any]) -> str:
    verdict: Verdict = await deps.sink.submit(intent)
    deps.calls.append(ToolCall(name, arguments, verdict.status))
    return f"{verdict.status}: {verdict.message}"


def interval_intent(
    deps: ToolDeps, endpoint: str, interval_seconds: float, ttl_seconds: float, reason: str
) -> Intent:
    return Intent(
        Verb.INTERVAL_HINT,
        endpoint,
        interval=timedelta(seconds=interval_seconds),
        ttl=timedelta(seconds=ttl_seconds),
        reason=reason,
        origin="llm",
    )


def one_shot_intent(deps: ToolDeps, endpoint: str, delay_seconds: float, reason: str) -> Intent:
    at = deps.obs.now + timedelta(seconds=delay_seconds)
    return Intent(Verb.ONE_SHOT, endpoint, at=at, reason=reason, origin="llm")


def pause_intent(deps: ToolDeps, endpoint: str, pause_seconds: float | None, reason: str) -> Intent:
    if pause_seconds is None:
        return Intent(Verb.RESUME, endpoint, reason=reason, origin="llm")
    at = deps.obs.now + timedelta(seconds=pause_seconds)
    return Intent(Verb.PAUSE, endpoint, at=at, reason=reason, origin="llm")


def clear_intent(endpoint: str, reason: str) -> Intent:
    return Intent(Verb.CLEAR_HINTS, endpoint, reason=reason, origin="llm")
