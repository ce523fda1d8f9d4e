"""The ``cadenza planner`` process body, for the composition root to call.

``container.py`` builds the ``Services`` (with ``planner=`` the planner store) and a
``PlannerConfig`` from ``Settings``; ``run_planner`` then runs until ``stop`` is set.
``cadenza serve`` runs the same coroutine beside the API and the scheduler.

Without ``model`` settings only the rules planner runs; endpoints set to ``llm``
then get a recorded ``error`` session saying no model is configured.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from cadenza.actions.base import Services
from cadenza.domain.planning import PlannerKind
from cadenza.planner.budget import Budget
from cadenza.planner.loop import LoopOptions, PlannerLoop
from cadenza.planner.port import Planner
from cadenza.planner.providers import ModelSettings, build_model
from cadenza.planner.rules_planner import RulesPlanner
from cadenza.ports import PlannerStore


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """The planner's knobs (seconds on the wire, like every setting)."""

    debounce_seconds: float = 30.0
    idle_after_seconds: float = 600.0
    poll_interval_seconds: float = 1.0
    batch: int = 200
    monthly_token_budget: int | None = None
    """Per tenant; ``None``: unlimited."""
    model: ModelSettings | None = None
    max_steps: int = 8
    model_attempts: int = 3
    max_tokens: int = 1024
    concurrency: int = 8
    deadline_seconds: float = 180.0


def build_planner_loop(
    services: Services, store: PlannerStore, config: PlannerConfig
) -> PlannerLoop:
    planners: dict[PlannerKind, Planner] = {PlannerKind.RULES: RulesPlanner()}
    if config.model is not None:
        # Imported here: the LLM planner needs the 'ai' extra, the rules planner not.
        from cadenza.planner.llm import LlmOptions, LlmPlanner

        llm = LlmOptions(
            max_steps=config.max_steps,
            attempts=config.model_attempts,
            max_tokens=config.max_tokens,
        )
        planners[PlannerKind.LLM] = LlmPlanner(build_model(config.model), services.clock, llm)
    options = LoopOptions(
        debounce=timedelta(seconds=config.debounce_seconds),
        idle_after=timedelta(seconds=config.idle_after_seconds),
        batch=config.batch,
        poll_interval=config.poll_interval_seconds,
        concurrency=config.concurrency,
        deadline=timedelta(seconds=config.deadline_seconds),
    )
    budget = Budget(store, config.monthly_token_budget)
    return PlannerLoop(services, store, planners, budget, options)


async def run_planner(
    services: Services, store: PlannerStore, config: PlannerConfig, stop: asyncio.Event
) -> None:
    """Run the planner loop until ``stop`` is set (the ``cadenza planner`` process); it
    returns promptly then, its analyses under way cancelled and recorded."""
    loop = build_planner_loop(services, store, config)
    try:
        await loop.run(stop)
    finally:
        await loop.close()
