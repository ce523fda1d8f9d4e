"""One hanging model call delays nobody else, and stopping does not wait for it.

A real OpenAI-compatible server on 127.0.0.1 answers at once for 20 endpoints and
never answers for a 21st. The planner loop runs on the real clock, as in
``cadenza planner``. The assertions are about order, never about speed: the 20 are
each analysed while the 21st is still waiting for its model, and once told to stop
the loop returns while the model would still be hanging, with that analysis
recorded as cancelled. Timeouts are hang guards only.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anyio
import pytest

from cadenza.actions.base import Services
from cadenza.adapters.clock import SystemClock
from cadenza.domain import lifecycle
from cadenza.domain.planning import EndpointPlanner, PlannerKind, SessionOutcome, WatchState
from cadenza.planner.budget import Budget
from cadenza.planner.llm import LlmOptions, LlmPlanner
from cadenza.planner.loop import LoopOptions, PlannerLoop
from cadenza.planner.providers import ModelSettings, build_model
from cadenza.testing import MemoryStore
from cadenza.testing.planner_store import MemoryPlannerStore

from .factories import TENANT, guarded, job
from .model_server import HANG, Reply, briefing_of, conclusion, serve
from .world import NullDispatcher, NullWaker

pytestmark = pytest.mark.anyio

HANG_GUARD = 60
PROMPT = [f"prompt-{n:02d}" for n in range(20)]


def answer(body: dict[str, object]) -> Reply:
    return HANG if '"name": "stuck"' in briefing_of(body) else (200, conclusion(), {})  # type: ignore[arg-type]


async def test_a_hanging_model_delays_no_other_endpoint_and_stopping_does_not_wait_for_it() -> None:
    clock = SystemClock()
    store = MemoryStore()
    pstore = MemoryPlannerStore(store)
    services = Services(store, clock, NullWaker(), NullDispatcher(), b"k" * 32, planner=pstore)
    the_job = job()
    endpoints = [guarded(name, every=3600) for name in ["stuck", *PROMPT]]
    async with store.transaction() as tx:
        await tx.insert_job(the_job)
        for ep in endpoints:
            await tx.insert_endpoint(lifecycle.replan(ep, the_job, clock.now()))
    for ep in endpoints:
        await pstore.put_planner(EndpointPlanner(TENANT, ep.id, kind=PlannerKind.LLM))
        await pstore.put_watch(WatchState(TENANT, ep.id, ep.job_id, due_at=clock.now()))

    async with serve(answer) as server:
        settings = ModelSettings(model="test-model", base_url=server.base_url, api_key="sk")
        planner = LlmPlanner(build_model(settings), clock, LlmOptions())
        options = LoopOptions(concurrency=4, deadline=timedelta(minutes=30), poll_interval=0.05)
        loop = PlannerLoop(services, pstore, {PlannerKind.LLM: planner}, Budget(pstore), options)
        stop = asyncio.Event()
        running = asyncio.create_task(loop.run(stop))
        try:
            with anyio.fail_after(HANG_GUARD):
                while True:
                    if len(pstore.sessions) >= len(PROMPT):
                        break
                    await asyncio.sleep(0.05)
            analysed_while_hanging = {s.endpoint_id for s in pstore.sessions.values()}
            still_hanging = server.open
            stop.set()
            with anyio.fail_after(HANG_GUARD):
                await running
        finally:
            stop.set()
            await loop.close()

    assert still_hanging == 1
    assert analysed_while_hanging == {f"end_{name}" for name in PROMPT}
    by_endpoint = {s.endpoint_id: s for s in pstore.sessions.values()}
    assert {by_endpoint[f"end_{n}"].outcome for n in PROMPT} == {SessionOutcome.NO_CHANGE}
    stuck = by_endpoint["end_stuck"]
    assert stuck.outcome is SessionOutcome.CANCELLED
    assert (stuck.planner, stuck.model) == (PlannerKind.LLM, "test-model")
    assert stuck.finished_at > stuck.started_at
    assert len(pstore.sessions) == len(endpoints)
