"""Analyses side by side: bounded concurrency, one analysis waiting per endpoint, the
deadline, and cancellation, with a model that answers only when released."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anyio
import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from cadenza.domain.model import Endpoint
from cadenza.domain.planning import EndpointPlanner, PlannerKind, SessionOutcome, WatchState
from cadenza.planner.llm import LlmOptions, LlmPlanner

from .factories import T0, TENANT, guarded
from .world import World, ok

pytestmark = pytest.mark.anyio

HANG_GUARD = 30


class Gate:
    """A model whose every answer waits until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0
        self.in_flight = 0
        self.most = 0

    async def __call__(self, _messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.calls += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        arguments = {"analysis": "steady", "look_again_seconds": 600}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, arguments)])

    async def until_in_flight(self, count: int) -> None:
        with anyio.fail_after(HANG_GUARD):
            while True:
                if self.in_flight >= count:
                    return
                await asyncio.sleep(0.01)


async def gated_world(gate: Gate, *endpoints: Endpoint, **options: float) -> World:
    world = World(**options)  # type: ignore[arg-type]
    model = FunctionModel(gate, model_name="gated")
    world.loop._planners[PlannerKind.LLM] = LlmPlanner(model, world.clock, LlmOptions())
    await world.add(*endpoints)
    for ep in endpoints:
        await world.configure(EndpointPlanner(TENANT, ep.id, kind=PlannerKind.LLM))
        await world.pstore.put_watch(WatchState(TENANT, ep.id, ep.job_id, due_at=T0))
    return world


async def sessions(world: World):  # type: ignore[no-untyped-def]
    page = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=99)
    return page.items


async def test_no_more_analyses_run_at_once_than_the_concurrency_allows() -> None:
    gate = Gate()
    endpoints = [guarded(f"ep{n}", every=600) for n in range(5)]
    world = await gated_world(gate, *endpoints, concurrency=2)
    assert await world.loop.start_due() == 2
    await gate.until_in_flight(2)
    assert await world.loop.start_due() == 0
    assert len(world.loop.running) == 2
    gate.release.set()
    assert await world.loop.tick() == 5  # the two under way, then the three waiting
    assert len(await sessions(world)) == 5
    assert gate.most == 2


async def test_runs_arriving_during_an_analysis_queue_one_more_analysis_only() -> None:
    gate = Gate()
    world = await gated_world(gate, guarded("health", every=60))
    assert await world.loop.start_due() == 1
    await gate.until_in_flight(1)
    for minute in (1, 2, 3):
        world.clock.set(T0 + timedelta(minutes=minute))
        await world.run_due(ok({"n": minute}))
        await world.loop.ingest()
    world.clock.advance(timedelta(minutes=1))
    assert await world.loop.start_due() == 0  # one is running: the new runs wait
    gate.release.set()
    assert await world.loop.drain() == 1
    assert await world.loop.start_due() == 1  # the one that waited
    assert await world.loop.drain() == 1
    assert await world.loop.start_due() == 0
    assert gate.calls == 2


async def test_an_analysis_past_its_deadline_is_an_error_session_of_its_model() -> None:
    gate = Gate()
    world = await gated_world(gate, guarded("health", every=600), deadline=0.2)
    with anyio.fail_after(HANG_GUARD):
        assert await world.loop.tick() == 1
    [session] = await sessions(world)
    assert session.outcome is SessionOutcome.ERROR
    assert "deadline" in session.error
    assert (session.planner, session.model) == (PlannerKind.LLM, "gated")
    watch = await world.pstore.get_watch("end_health")
    assert watch is not None
    assert watch.errors == 1


async def test_cancelled_analyses_are_recorded_as_cancelled_and_due_again() -> None:
    gate = Gate()
    world = await gated_world(gate, guarded("a", every=600), guarded("b", every=600))
    assert await world.loop.start_due() == 2
    await gate.until_in_flight(2)
    world.clock.advance(timedelta(seconds=42))
    with anyio.fail_after(HANG_GUARD):
        assert await world.loop.cancel_running() == 2
    found = await sessions(world)
    assert {s.outcome for s in found} == {SessionOutcome.CANCELLED}
    assert {s.model for s in found} == {"gated"}
    assert all(s.finished_at - s.started_at == timedelta(seconds=42) for s in found)
    for name in ("a", "b"):
        watch = await world.pstore.get_watch(f"end_{name}")
        assert watch is not None
        assert watch.due_at == world.clock.now()
    assert world.loop.running == frozenset()
