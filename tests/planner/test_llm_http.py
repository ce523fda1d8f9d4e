"""The LLM planner over HTTP against an OpenAI-compatible test server on 127.0.0.1.

The server replies with, in order: an HTTP 500, a tool call whose arguments are
malformed JSON, a valid interval hint, and the final answer. The planner retries
the error with backoff on the frozen clock, refuses the malformed call, applies the
valid one through the catalogue, and records all of it in the session.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from cadenza.domain.model import ActorKind
from cadenza.domain.planning import EndpointPlanner, PlannerKind, SessionOutcome
from cadenza.planner.llm import LlmOptions, LlmPlanner
from cadenza.planner.providers import ModelSettings, build_model

from .factories import T0, TENANT, guarded
from .world import World, ok

pytestmark = pytest.mark.anyio

HEALTH = guarded("health", 10, 600, every=60, description="Checkout health.")


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"call_{name}_{len(arguments)}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def completion(tool_calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": tool_calls},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


REPLIES: list[tuple[int, dict[str, Any]]] = [
    (500, {"error": {"message": "upstream overloaded", "type": "server_error"}}),
    (200, completion([tool_call("apply_interval_hint", '{"endpoint": "health", "interval_')])),
    (
        200,
        completion(
            [
                tool_call(
                    "apply_interval_hint",
                    json.dumps(
                        {
                            "endpoint": "health",
                            "interval_seconds": 20,
                            "ttl_seconds": 600,
                            "reason": "latency rising",
                        }
                    ),
                )
            ]
        ),
    ),
    (
        200,
        completion(
            [
                tool_call(
                    "final_result",
                    json.dumps(
                        {"analysis": "Tightened while latency rises.", "look_again_seconds": 900}
                    ),
                )
            ]
        ),
    ),
]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies = list(REPLIES)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        status, body = self.replies.pop(0)
        return web.json_response(body, status=status)


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def test_the_planner_talks_to_an_openai_compatible_server_over_http(
    server: tuple[FakeOpenAI, str],
) -> None:
    fake, base_url = server
    world = World()
    model = build_model(ModelSettings(model="test-model", base_url=base_url, api_key="sk-test"))
    planner = LlmPlanner(model, world.clock, LlmOptions())
    world.loop._planners[PlannerKind.LLM] = planner
    await world.add(HEALTH)
    await world.configure(EndpointPlanner(TENANT, HEALTH.id, kind=PlannerKind.LLM))
    try:
        await world.advance(ok({"p95_ms": 900}), T0 + timedelta(seconds=91))
    finally:
        await world.loop.close()

    assert len(fake.requests) == 4
    offered = {t["function"]["name"] for t in fake.requests[0]["tools"]}
    assert {
        "apply_interval_hint",
        "schedule_one_shot_run",
        "pause_or_resume_endpoint",
        "clear_adaptive_hints",
        "latest_response",
        "response_history",
        "siblings_latest_responses",
        "summarize_endpoint_health",
    } <= offered
    assert "Checkout health." in json.dumps(fake.requests[0]["messages"])
    retry_note = json.dumps(fake.requests[2]["messages"][-1])
    assert "call_apply_interval_hint_" in retry_note

    hint = (await world.get(HEALTH.id)).interval_hint
    assert hint is not None
    assert hint.interval == timedelta(seconds=20)
    assert hint.actor.kind is ActorKind.PLANNER
    [session] = (
        await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=9)
    ).items
    assert session.outcome is SessionOutcome.CHANGED
    assert session.model == "test-model"
    assert (session.input_tokens, session.output_tokens) == (300, 60)
    assert session.summary == "Tightened while latency rises."
    outcomes = [(c.name, c.outcome.split(":")[0]) for c in session.tool_calls]
    assert outcomes[0] == ("apply_interval_hint", "invalid")
    assert outcomes[1] == ("apply_interval_hint", "applied")
    # The HTTP 500 was retried after the first backoff step on the frozen clock.
    assert session.finished_at - session.started_at == timedelta(seconds=2)
