"""The LLM planner: a pydantic-ai agent whose tools are the catalogue's planner tools.

The model sees the endpoint's plain-English description, its schedule state and
recent outcomes, and its siblings. It may read more through the read tools and
change cadence only through the write tools (``cadenza.planner.tools``), on the
endpoint and its siblings in the same job, always clamped. It ends with a short
analysis and when to look again (1 minute to 24 hours).

Safety nets:

* tool arguments are validated strictly by the action's input model; an invalid
  call is sent back to the model and recorded in the session, never applied;
* each analysis makes at most ``max_steps`` model requests, each answer at most
  ``max_tokens`` long, within the tenant's remaining monthly tokens; hitting a cap
  ends the analysis, keeping what was done; the loop's deadline bounds it in time;
* a model server that reports no usage is charged an estimate (``CHARS_PER_TOKEN``
  characters of everything sent and received per token), so the budget holds;
* transport and HTTP errors from the model are retried ``attempts`` times, waiting
  the doubling backoff or the provider's ``Retry-After``, whichever is longer, on the
  injected clock; a wait longer than ``max_retry_wait`` is not waited here: the
  analysis ends (``ModelUnavailable``) and the loop retries it after that time;
* whatever ends an analysis early, what it spent is reported to the sink first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, Field
from pydantic_ai import Agent, capture_run_messages
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelHTTPError,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import UsageLimits

from cadenza.domain.planning import MAX_LOOK_AGAIN, MIN_LOOK_AGAIN, PlannerKind, ToolCall
from cadenza.planner import tools
from cadenza.planner.port import Analysis, ModelUnavailable, Observation, Sink
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
Times are RFC 3339 in UTC; the briefing says what time it is now.
Finish with a brief analysis and when to look again (60 to 86400 seconds)."""

CHARS_PER_TOKEN = 4
ARGUMENT_CHARS = 2000
"""Tool-call arguments longer than this (as JSON) are recorded cut."""


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
    max_tokens: int = 1024
    max_retry_wait: timedelta = timedelta(seconds=60)


def build_agent(model: Model | str, options: LlmOptions) -> Agent[tools.ToolDeps, Conclusion]:
    return Agent(
        model,
        deps_type=tools.ToolDeps,
        output_type=Conclusion,
        instructions=INSTRUCTIONS,
        retries=options.tool_retries,
        tools=tools.planner_tools(),
    )


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
        self._fixed_chars = len(INSTRUCTIONS) + sum(
            len(json.dumps(t.tool_def.parameters_json_schema)) + len(t.description or "")
            for t in tools.planner_tools()
        )

    @property
    def kind(self) -> PlannerKind:
        return PlannerKind.LLM

    @property
    def model_name(self) -> str:
        return self._model.model_name

    async def close(self) -> None:
        """Close the model's HTTP client, if it has one."""
        client = getattr(self._model, "client", None)
        close = getattr(client, "close", None)
        if close is not None:
            await close()

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis:
        deps = tools.ToolDeps(obs, sink)
        spent: list[ModelMessage] = []
        try:
            return await self._attempts(obs, deps, spent)
        except BaseException:  # an error, the deadline or shutdown: report the cost first
            spent_in, spent_out = self.tokens(spent)
            sink.report_spent(spent_in, spent_out, tool_calls(spent))
            raise

    async def _attempts(
        self, obs: Observation, deps: tools.ToolDeps, spent: list[ModelMessage]
    ) -> Analysis:
        limits = UsageLimits(
            request_limit=self._options.max_steps, total_tokens_limit=obs.token_allowance
        )
        settings = ModelSettings(max_tokens=self._options.max_tokens)
        attempt = 0
        while True:
            attempt += 1
            deps.calls.clear()
            with capture_run_messages() as messages:
                try:
                    result = await self._agent.run(
                        briefing(obs), deps=deps, usage_limits=limits, model_settings=settings
                    )
                except ModelAPIError as exc:
                    spent += messages
                    await self._wait_to_retry(exc, attempt, bool(deps.calls))
                    continue
                except (UsageLimitExceeded, UnexpectedModelBehavior) as exc:
                    spent += messages
                    return self._stopped(obs, spent, exc)
                except BaseException:
                    spent += messages
                    raise
            spent += messages
            return self._concluded(obs, result.output, spent)

    async def _wait_to_retry(self, exc: ModelAPIError, attempt: int, wrote: bool) -> None:
        """Sleep before the next attempt, or raise ``ModelUnavailable`` when there is
        none: attempts used up, writes already made, or a wait that is too long."""
        asked = retry_after(exc, self._clock.now())
        wait = self._options.backoff * 2 ** (attempt - 1)
        if asked is not None:
            wait = max(wait, asked)
        if attempt >= self._options.attempts or wrote or wait > self._options.max_retry_wait:
            raise ModelUnavailable(f"{type(exc).__name__}: {exc}"[:500], asked) from exc
        await self._clock.sleep(wait.total_seconds())

    def _concluded(
        self, obs: Observation, out: Conclusion, messages: list[ModelMessage]
    ) -> Analysis:
        spent_in, spent_out = self.tokens(messages)
        return Analysis(
            summary=out.analysis,
            look_again_at=obs.now + timedelta(seconds=out.look_again_seconds),
            model=self.model_name,
            input_tokens=spent_in,
            output_tokens=spent_out,
            tool_calls=tool_calls(messages),
        )

    def _stopped(self, obs: Observation, messages: list[ModelMessage], exc: Exception) -> Analysis:
        spent_in, spent_out = self.tokens(messages)
        return Analysis(
            summary=f"Stopped early: {exc}"[:2000],
            look_again_at=obs.now + timedelta(hours=1),
            model=self.model_name,
            input_tokens=spent_in,
            output_tokens=spent_out,
            tool_calls=tool_calls(messages),
        )

    def tokens(self, messages: Sequence[ModelMessage]) -> tuple[int, int]:
        """Input and output tokens of ``messages``: as the model server reported them,
        or estimated for a response that came without usage (module docstring)."""
        spent_in = spent_out = 0
        context = self._fixed_chars
        for message in messages:
            size = len(ModelMessagesTypeAdapter.dump_json([message]))
            if isinstance(message, ModelResponse):
                reported = (message.usage.input_tokens or 0, message.usage.output_tokens or 0)
                if any(reported):
                    spent_in, spent_out = spent_in + reported[0], spent_out + reported[1]
                else:
                    spent_in += -(-context // CHARS_PER_TOKEN)
                    spent_out += -(-size // CHARS_PER_TOKEN)
            context += size
        return spent_in, spent_out


def retry_after(exc: ModelAPIError, now: datetime) -> timedelta | None:
    """The provider's ``Retry-After`` (seconds or an HTTP date), if it sent one."""
    headers = exc.headers if isinstance(exc, ModelHTTPError) else None
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), when - now) if when.tzinfo is not None else None


def tool_calls(messages: Sequence[ModelMessage]) -> tuple[ToolCall, ...]:
    """Every tool call the model made, with what came of it: the tool's answer, or
    the validation error when its arguments were refused. Long arguments are cut."""
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
                arguments = _bounded(part.args_as_dict())  # bad JSON: INVALID_JSON
                calls.append(
                    ToolCall(part.tool_name, arguments, returns.get(part.tool_call_id, "no answer"))
                )
    return tuple(calls)


def _bounded(arguments: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(arguments, default=str)
    if len(text) <= ARGUMENT_CHARS:
        return arguments
    return {"cut": text[:ARGUMENT_CHARS], "characters": len(text)}
