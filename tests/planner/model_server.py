"""An OpenAI-compatible chat-completions server on 127.0.0.1 for planner tests.

``answer`` decides each reply from the request body: an HTTP status, a JSON body and
headers, or ``HANG`` to keep the request open until the client gives up (a model
that never answers). Every request body is kept in ``requests``; ``open`` counts
requests still waiting for their answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HANG = "hang"

Reply = tuple[int, dict[str, Any], dict[str, str]] | str
Answer = Callable[[dict[str, Any]], Reply]


def tool_call(name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": f"call_{name}_{len(text)}",
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def completion(
    tool_calls: list[dict[str, Any]], usage: dict[str, int] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
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
    }
    if usage is not None:
        body["usage"] = usage
    return body


def conclusion(analysis: str = "steady", look_again_seconds: float = 600) -> dict[str, Any]:
    arguments = {"analysis": analysis, "look_again_seconds": look_again_seconds}
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    return completion([tool_call("final_result", arguments)], usage)


@dataclass
class ModelServer:
    answer: Answer
    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    open: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        reply = self.answer(body)
        if reply == HANG:
            self.open += 1
            try:
                await asyncio.Event().wait()
            finally:
                self.open -= 1
        assert not isinstance(reply, str)
        status, payload, headers = reply
        return web.json_response(payload, status=status, headers=headers)


def briefing_of(body: dict[str, Any]) -> str:
    """The planner's opening message in a request (it names the endpoint)."""
    return next(str(m.get("content")) for m in body["messages"] if m.get("role") == "user")


@asynccontextmanager
async def serve(answer: Answer) -> AsyncIterator[ModelServer]:
    server = ModelServer(answer)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield server
    finally:
        await runner.cleanup()
