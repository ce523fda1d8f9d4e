"""The planner process body: wiring, and a loop that outlives failing ticks."""

from __future__ import annotations

import asyncio

import pytest

from cadenza.domain.planning import PlannerKind
from cadenza.planner.providers import ModelSettings
from cadenza.planner.service import PlannerConfig, build_planner_loop, run_planner

from .world import World

pytestmark = pytest.mark.anyio


async def test_the_llm_planner_is_built_only_when_a_model_is_configured() -> None:
    world = World()
    rules_only = build_planner_loop(world.services, world.pstore, PlannerConfig())
    assert set(rules_only._planners) == {PlannerKind.RULES}
    model = ModelSettings(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    both = build_planner_loop(world.services, world.pstore, PlannerConfig(model=model))
    assert set(both._planners) == {PlannerKind.RULES, PlannerKind.LLM}
    await both.close()


async def test_the_loop_keeps_going_after_a_failing_tick_and_stops_when_told() -> None:
    world = World()
    calls = 0
    feed = world.pstore.runs_after
    stop = asyncio.Event()

    async def flaky(cursor: str | None, *, limit: int):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("database restarting")
        stop.set()
        return await feed(cursor, limit=limit)

    world.pstore.runs_after = flaky  # type: ignore[method-assign]
    start = world.clock.now()
    await asyncio.wait_for(run_planner(world.services, world.pstore, PlannerConfig(), stop), 5)
    assert calls == 3
    # Each failed pass is followed by one poll interval; the third pass saw the stop.
    assert (world.clock.now() - start).total_seconds() == 2.0


def test_an_anthropic_model_without_its_package_fails_with_a_clear_message() -> None:
    from importlib.util import find_spec

    from cadenza.planner.providers import build_model

    if find_spec("anthropic") is not None:
        pytest.skip("the anthropic package is installed")
    with pytest.raises(RuntimeError, match="anthropic"):
        build_model(ModelSettings(provider="anthropic", model="claude", api_key="k"))
