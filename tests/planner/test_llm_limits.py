"""The LLM planner's bounds against an OpenAI-compatible server on 127.0.0.1: answer
length, usage the server does not report, and the provider's Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic_ai.exceptions import ModelHTTPError

from cadenza.domain.planning import EndpointPlanner, PlannerKind, SessionOutcome, month_key
from cadenza.planner.llm import LlmOptions, LlmPlanner, retry_after, tool_calls
from cadenza.planner.providers import ModelSettings, build_model
from cadenza.planner.tools import RESULT_CHARS, capped

from .factories import T0, TENANT, guarded
from .model_server import Reply, completion, conclusion, serve, tool_call
from .world import World, ok

pytestmark = pytest.mark.anyio

HEALTH = guarded("health", 10, 600, every=60, description="Checkout health.")


async def analysed_once(base_url: str, options: LlmOptions) -> World:
    """A world whose one endpoint is analysed by the LLM planner at ``base_url``."""
    world = World()
    model = build_model(ModelSettings(model="test-model", base_url=base_url, api_key="sk-test"))
    world.loop._planners[PlannerKind.LLM] = LlmPlanner(model, world.clock, options)
    await world.add(HEALTH)
    await world.configure(EndpointPlanner(TENANT, HEALTH.id, kind=PlannerKind.LLM))
    try:
        await world.advance(ok({"p95_ms": 100}), T0 + timedelta(seconds=91))
    finally:
        await world.loop.close()
    return world


async def only_session(world: World):  # type: ignore[no-untyped-def]
    [session] = (
        await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=9)
    ).items
    return session


def replies(*answers: Reply):  # type: ignore[no-untyped-def]
    queue = list(answers)
    return lambda _body: queue.pop(0) if len(queue) > 1 else queue[0]


async def test_every_request_asks_for_at_most_max_tokens() -> None:
    async with serve(replies((200, conclusion(), {}))) as server:
        await analysed_once(server.base_url, LlmOptions(max_tokens=256))
    [request] = server.requests
    assert request.get("max_completion_tokens", request.get("max_tokens")) == 256


async def test_a_server_that_reports_no_usage_is_charged_an_estimate() -> None:
    arguments = {"analysis": "steady", "look_again_seconds": 600}
    silent = completion([tool_call("final_result", arguments)], usage=None)
    async with serve(replies((200, silent, {}))) as server:
        world = await analysed_once(server.base_url, LlmOptions())
    session = await only_session(world)
    assert session.input_tokens > 100  # the instructions and tools alone are that long
    assert session.output_tokens > 0
    charged = world.pstore.tokens[(TENANT, month_key(session.started_at))]
    assert charged == session.input_tokens + session.output_tokens


async def test_the_providers_retry_after_is_waited_when_longer_than_the_backoff() -> None:
    busy: Reply = (429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})
    async with serve(replies(busy, (200, conclusion("fine"), {}))) as server:
        world = await analysed_once(server.base_url, LlmOptions())
    session = await only_session(world)
    assert session.summary == "fine"
    assert session.finished_at - session.started_at == timedelta(seconds=7)
    assert len(server.requests) == 2


async def test_a_retry_after_beyond_the_longest_wait_ends_the_analysis_until_then() -> None:
    away: Reply = (503, {"error": {"message": "maintenance"}}, {"Retry-After": "3600"})
    async with serve(replies(away)) as server:
        world = await analysed_once(
            server.base_url, LlmOptions(max_retry_wait=timedelta(seconds=60))
        )
    session = await only_session(world)
    assert session.outcome is SessionOutcome.ERROR
    assert session.planner is PlannerKind.LLM
    assert session.model == "test-model"
    assert len(server.requests) == 1
    watch = await world.pstore.get_watch(HEALTH.id)
    assert watch is not None
    assert watch.due_at is not None
    assert watch.due_at >= session.finished_at + timedelta(seconds=3600)


async def test_a_failed_analysis_is_an_llm_session_with_its_model_and_real_duration() -> None:
    down: Reply = (500, {"error": {"message": "down"}}, {})
    async with serve(replies(down)) as server:
        world = await analysed_once(server.base_url, LlmOptions(attempts=3))
    session = await only_session(world)
    assert (session.outcome, session.planner, session.model) == (
        SessionOutcome.ERROR,
        PlannerKind.LLM,
        "test-model",
    )
    # Three attempts, waiting the backoff (2 s, then 4 s) on the frozen clock in between.
    assert session.finished_at - session.started_at == timedelta(seconds=6)
    assert len(server.requests) == 3


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def error(value: str) -> ModelHTTPError:
        exc = ModelHTTPError(429, "m", body=None)
        exc.headers = {"retry-after": value}
        return exc

    assert retry_after(error("12"), now) == timedelta(seconds=12)
    assert retry_after(error("Sun, 01 Mar 2026 12:01:30 GMT"), now) == timedelta(seconds=90)
    assert retry_after(error("whenever"), now) is None
    assert retry_after(ModelHTTPError(500, "m", body=None), now) is None


def test_tool_results_and_recorded_arguments_are_cut_to_size() -> None:
    from pydantic_ai.messages import ModelResponse, ToolCallPart

    assert len(capped({"body": "x" * 100_000})) < RESULT_CHARS + 100
    assert capped("short") == "short"
    huge: dict[str, Any] = {"endpoint": "health", "reason": "y" * 50_000}
    [recorded] = tool_calls([ModelResponse(parts=[ToolCallPart("clear_adaptive_hints", huge)])])
    assert set(recorded.arguments) == {"cut", "characters"}
    assert len(str(recorded.arguments["cut"])) <= 2000
