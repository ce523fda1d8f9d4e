"""Model construction for the LLM planner, from plain settings.

``openai`` talks to any OpenAI-compatible Chat Completions server at ``base_url``
(OpenAI itself, vLLM, Ollama, LiteLLM proxies …). ``anthropic`` needs the optional
``anthropic`` package. The SDK's own retries are switched off: the planner retries
with backoff on the injected clock, so tests never wait and the loop stays in charge.

The SDKs are imported only when a model is built: the rules planner, the default,
runs without the ``ai`` extra installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic_ai.models import Model


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Which model the LLM planner uses. ``api_key`` is a secret: never log it."""

    provider: Literal["openai", "anthropic"] = "openai"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    timeout_seconds: float = 60.0


def build_model(settings: ModelSettings) -> Model:
    try:
        from openai import AsyncOpenAI
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider
    except ImportError as exc:
        raise RuntimeError(
            "A planner model is configured, but the LLM planner needs the 'ai' extra: "
            "pip install 'cadenza[ai]'."
        ) from exc
    if settings.provider == "anthropic":
        return _anthropic(settings)
    client = AsyncOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key or "not-set",
        max_retries=0,
        timeout=settings.timeout_seconds,
    )
    return OpenAIChatModel(settings.model, provider=OpenAIProvider(openai_client=client))


def _anthropic(settings: ModelSettings) -> Model:
    try:
        models: Any = import_module("pydantic_ai.models.anthropic")
        providers: Any = import_module("pydantic_ai.providers.anthropic")
    except ImportError as exc:
        raise RuntimeError(
            "The anthropic provider needs the 'anthropic' package: "
            "pip install 'pydantic-ai-slim[anthropic]'."
        ) from exc
    provider = providers.AnthropicProvider(api_key=settings.api_key, base_url=settings.base_url)
    model: Model = models.AnthropicModel(settings.model, provider=provider)
    return model
