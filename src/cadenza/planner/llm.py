"""The LLM planner: a pydantic-ai agent whose tools are the catalogue's actions.

The model sees the endpoint's plain-English description, its schedule state and
recent outcomes, and its siblings. It may read more through the read tools and
change cadence only through the write tools (``cadenza.planner.tools``), on the
endpoint and its siblings in the same job, always clamped. It ends with a short
analysis and when to look again (1 minute to 24 hours).

Safety nets:

* tool arguments are validated against the tool's schema; an invalid call is sent
  back to the model as an error and recorded in the session, never applied;
* each analysis is capped at ``max_steps`` model requests and at the tenant's
  remaining monthly tokens; hitting a cap ends the analysis, keeping what was done;
* transport and HTTP errors from the model are retried ``attempts`` times with
  doubling backoff on the injected clock, then raised for the loop to record.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic_ai import Agent, RunContext, capture_run_messages
from pydantic_ai.exceptions import ModelAPIError, UnexpectedModelBehavior, UsageLimitExceeded
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, ToolReturnPart
from pydantic_ai.models import Model
from pydantic_ai.usage import UsageLimits

from cadenza.domain import limits
from cadenza.domain.planning import MAX_LOOK_AGAIN, MIN_LOOK_AGAIN, PlannerKind, ToolCall
from cadenza.planner import tools
from cadenza.planner.port import Analysis, Observation, Sink
from cadenza.ports import Clock

INSTRUCTIONS = """\
You steer the cadence of one HTTP endpoint of an adaptive scheduler, and of its
siblings in the same job, from their responses. Read the endpoint's description: it
says what the endpoint is for (health check, investigation, recovery, alert …).
Change cadence only with the write tools; every change is bounded by the endpoint's
guardrails and expires by itself. Be conservative: change nothing when things are
steady, tighten when a health signal degrades, wake paused investigation endpoints
when their siblings show the problem they investigate, run recovery once rather than
repeatedly, and relax again after recovery. Give a short reason with every change.
Finish with a brief analysis and when to look again (60 to 86400 seconds)."""

Reason = Annotated[str, Field(max_length=limits.MAX_REASON_LENGTH)]
EndpointName = Annotated[str, Field(min_length=1, max_length=200)]
Positive = Annotated[float, Field(gt=0, le=limits.MAX_HINT_TTL.total_seconds())]


class Conclusion(BaseModel):
    """How the analysis ends."""

    analysis: str = Field(max_length=2000, description="What you saw and did, briefly.")
    look_again_seconds: float = Field(
        ge=MIN_LOOK_AGAIN.total_seconds(),
        le=MAX_LOOK_AGAIN.total_seconds(),
        description="When to analyse again without new runs.",
    )


@dataclass(frozen=True, slots=True)
class LlmOptions:
    max_steps: int = 8
    attempts: int = 3
    backoff: timedelta = timedelta(seconds=2)
    tool_retries: int = 2


def build_agent(model: Model | str, options: LlmOptions) -> Agent[tools.ToolDeps, Conclusion]:
    agent: Agent[tools.ToolDeps, Conclusion] = Agent(
        model,
        deps_type=tools.ToolDeps,
        output_type=Conclusion,
        instructions=INSTRUCTIONS,
        retries=options.tool_retries,
    )
    _register_reads(agent)
    _register_writes(agent)
    return agent


def _register_reads(agent: Agent[tools.ToolDeps, Conclusion]) -> None:
    @agent.tool
    async def latest_response(
        ctx: RunContext[tools.ToolDeps], endpoint: EndpointName | None = None
    ) -> dict[str, Any]:
        """The latest run and response of this endpoint, or of a sibling by name."""
        return tools.latest_response(ctx.deps, endpoint)

    @agent.tool
    async def response_history(
        ctx: RunContext[tools.ToolDeps],
        cursor: str | None = None,
        limit: Annotated[int, Field(ge=1, le=tools.HISTORY_PAGE)] = tools.HISTORY_PAGE,
    ) -> dict[str, Any]:
        """This endpoint's earlier runs, newest first; pass next_cursor for more."""
        return await tools.response_history(ctx.deps, cursor, limit)

    @agent.tool
    async def siblings_latest_responses(ctx: RunContext[tools.ToolDeps]) -> list[dict[str, Any]]:
        """Every sibling endpoint in the job: its state and latest response."""
        return tools.siblings_latest(ctx.deps)

    @agent.tool
    async def endpoint_health(
        ctx: RunContext[tools.ToolDeps],
        endpoint: EndpointName | None = None,
        window_seconds: Annotated[float, Field(ge=60, le=30 * 86400)] = 86400,
    ) -> Any:
        """Success rate, durations, streaks, MTBF/MTTR over a window."""
        return await tools.endpoint_health(ctx.deps, endpoint, window_seconds)


def _register_writes(agent: Agent[tools.ToolDeps, Conclusion]) -> None:
    @agent.tool
    async def apply_interval_hint(
        ctx: RunContext[tools.ToolDeps],
        endpoint: EndpointName,
        interval_seconds: Positive,
        ttl_seconds: Positive,
        reason: Reason,
    ) -> str:
        """Run the endpoint (or a sibling, by name) every interval_seconds for ttl_seconds."""
        intent = tools.interval_intent(ctx.deps, endpoint, interval_seconds, ttl_seconds, reason)
        args = {
            "endpoint": endpoint,
            "interval_seconds": interval_seconds,
            "ttl_seconds": ttl_seconds,
        }
        return await tools.submit(ctx.deps, "apply_interval_hint", intent, args)

    @agent.tool
    async def schedule_one_shot_run(
        ctx: RunContext[tools.ToolDeps],
        endpoint: EndpointName,
        delay_seconds: Annotated[float, Field(ge=0, le=86400)],
        reason: Reason,
    ) -> str:
        """Run the endpoint (or a sibling) once, delay_seconds from now."""
        intent = tools.one_shot_intent(ctx.deps, endpoint, delay_seconds, reason)
        args = {"endpoint": endpoint, "delay_seconds": delay_seconds}
        return await tools.submit(ctx.deps, "schedule_one_shot_run", intent, args)

    @agent.tool
    async def pause_or_resume_endpoint(
        ctx: RunContext[tools.ToolDeps],
        endpoint: EndpointName,
        pause_seconds: Annotated[float, Field(gt=0, le=86400)] | None,
        reason: Reason,
    ) -> str:
        """Pause the endpoint (or a sibling) for pause_seconds (at most 24 h); null resumes."""
        intent = tools.pause_intent(ctx.deps, endpoint, pause_seconds, reason)
        args = {"endpoint": endpoint, "pause_seconds": pause_seconds}
        return await tools.submit(ctx.deps, "pause_or_resume_endpoint", intent, args)

    @agent.tool
    async def clear_adaptive_hints(
        ctx: RunContext[tools.ToolDeps], endpoint: EndpointName, reason: Reason
    ) -> str:
        """Drop the interval hint and pending one-shot: back to the baseline schedule."""
        intent = tools.clear_intent(endpoint, reason)
        return await tools.submit(ctx.deps, "clear_adaptive_hints", intent, {"endpoint": endpoint})


def briefing(obs: Observation) -> str:
    """The opening message: the endpoint, its job, its recent outcomes, the trigger."""
    recent = [tools.run_view(r, body=False) for r in obs.runs[:10]]
    latest = tools.run_view(obs.runs[0]) if obs.runs else None
    facts = {
        "now": obs.now.isoformat(),
        "trigger": obs.trigger.value,
        "job": {"name": obs.job.name, "description": obs.job.description},
        "endpoint": tools.endpoint_view(obs.endpoint, obs.now),
        "latest_run": latest,
        "recent_runs": recent,
        "recent_outcomes": dict(Counter(r.status.value for r in obs.runs)),
        "siblings": [s.name for s in obs.siblings],
    }
    return "Analyse this endpoint now.\n" + json.dumps(facts, indent=1, default=str)


class LlmPlanner:
    """A ``Planner`` backed by a pydantic-ai model; see the module docstring."""

    def __init__(self, model: Model, clock: Clock, options: LlmOptions | None = None) -> None:
        self._options = options or LlmOptions()
        self._model = model
        self._clock = clock
        self._agent = build_agent(model, self._options)

    @property
    def kind(self) -> PlannerKind:
        return PlannerKind.LLM

    async def close(self) -> None:
        """Close the model's HTTP client, if it has one."""
        client = getattr(self._model, "client", None)
        close = getattr(client, "close", None)
        if close is not None:
            await close()

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis:
        deps = tools.ToolDeps(obs, sink)
        limits_ = UsageLimits(
            request_limit=self._options.max_steps, total_tokens_limit=obs.token_allowance
        )
        attempt = 0
        while True:
            attempt += 1
            deps.calls.clear()
            with capture_run_messages() as messages:
                try:
                    result = await self._agent.run(briefing(obs), deps=deps, usage_limits=limits_)
                except ModelAPIError:
                    if attempt >= self._options.attempts or deps.calls:
                        raise
                    await self._clock.sleep(self._backoff(attempt))
                    continue
                except (UsageLimitExceeded, UnexpectedModelBehavior) as exc:
                    return self._stopped(obs, messages, exc)
            return self._concluded(obs, result.output, messages, result.usage)

    def _backoff(self, attempt: int) -> float:
        return float(self._options.backoff.total_seconds() * 2 ** (attempt - 1))

    def _concluded(
        self, obs: Observation, out: Conclusion, messages: list[ModelMessage], usage: Any
    ) -> Analysis:
        return Analysis(
            summary=out.analysis,
            look_again_at=obs.now + timedelta(seconds=out.look_again_seconds),
            model=self._model.model_name,
            input_tokens=int(usage.input_tokens or 0),
            output_tokens=int(usage.output_tokens or 0),
            tool_calls=tool_calls(messages),
        )

    def _stopped(self, obs: Observation, messages: list[ModelMessage], exc: Exception) -> Analysis:
        spent_in, spent_out = tokens(messages)
        return Analysis(
            summary=f"Stopped early: {exc}"[:2000],
            look_again_at=obs.now + timedelta(hours=1),
            model=self._model.model_name,
            input_tokens=spent_in,
            output_tokens=spent_out,
            tool_calls=tool_calls(messages),
        )


def tokens(messages: list[ModelMessage]) -> tuple[int, int]:
    spent_in = spent_out = 0
    for message in messages:
        if isinstance(message, ModelResponse):
            spent_in += message.usage.input_tokens or 0
            spent_out += message.usage.output_tokens or 0
    return spent_in, spent_out


def tool_calls(messages: list[ModelMessage]) -> tuple[ToolCall, ...]:
    """Every tool call the model made, with what came of it: the tool's answer, or
    the validation error when its arguments were refused."""
    returns: dict[str, str] = {}
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolReturnPart):
                retried = getattr(part, "outcome", "") == "retried"
                text = part.model_response_str()
                returns[part.tool_call_id] = ("invalid: " if retried else "") + text[:500]
    calls = []
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                arguments = part.args_as_dict()  # malformed JSON comes back as INVALID_JSON
                calls.append(
                    ToolCall(part.tool_name, arguments, returns.get(part.tool_call_id, "no answer"))
                )
    return tuple(calls)
