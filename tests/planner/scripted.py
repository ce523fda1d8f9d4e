"""A scripted pydantic-ai model: each step answers one model request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

Step = Callable[[list[ModelMessage], AgentInfo], ModelResponse] | ModelResponse | Exception


def call(tool: str, **args: Any) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(tool, args)])


def calls(*pairs: tuple[str, dict[str, Any]]) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(t, a) for t, a in pairs])


def conclude(analysis: str = "steady", look_again_seconds: float = 600) -> Step:
    def step(_messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        name = info.output_tools[0].name
        args = {"analysis": analysis, "look_again_seconds": look_again_seconds}
        return ModelResponse(parts=[ToolCallPart(name, args)])

    return step


def text(content: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(content)])


class Script:
    """Plays ``steps`` in order; the last one repeats. Records what the model saw."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.seen: list[list[ModelMessage]] = []
        self.tools: list[str] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append(list(messages))
        self.tools = [t.name for t in info.function_tools]
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, ModelResponse):
            return step
        return step(messages, info)

    def model(self) -> FunctionModel:
        return FunctionModel(self, model_name="scripted")
