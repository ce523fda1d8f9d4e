"""The rules planner is evaluated at every run, in order (issue 16.2): a signal that
one run carries is not lost to the debounce, which serves LLM analyses only."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import ActorKind, Run
from cadenza.domain.planning import (
    EndpointPlanner,
    Metric,
    MetricCompare,
    PlannerKind,
    ResponseMatches,
    Rule,
    Step,
    Verb,
)
from cadenza.ids import new_id
from cadenza.planner.port import Analysis, Observation, Sink
from cadenza.planner.rules_planner import RulesPlanner

from .factories import T0, TENANT, guarded, run
from .world import World

pytestmark = pytest.mark.anyio

SHOP = guarded("shop", 5, 600, every=60)
SURGE = Rule(
    "surge",
    when=(ResponseMatches(Comparison(Op.GT, 1000, "/visitors")),),
    then=(Step(Verb.INTERVAL_HINT, interval=timedelta(seconds=5), ttl=timedelta(hours=1)),),
)
SLOW = Rule(
    "slow",
    when=(MetricCompare(Metric.DURATION_SECONDS, Op.GT, 2),),
    then=(Step(Verb.INTERVAL_HINT, interval=timedelta(seconds=300), ttl=timedelta(hours=1)),),
)


class Recording:
    """The rules planner, noting the run each evaluation was made at."""

    def __init__(self) -> None:
        self.at: list[str] = []
        self._rules = RulesPlanner()

    @property
    def kind(self) -> PlannerKind:
        return PlannerKind.RULES

    @property
    def model_name(self) -> str:
        return ""

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis:
        self.at.append(obs.runs[0].id)
        return await self._rules.analyse(obs, sink)


def shop_run(second: int, *, visitors: int = 40, duration: float = 0.1) -> Run:
    at = T0 + timedelta(seconds=second)
    made = run(SHOP, at, body={"visitors": visitors}, duration=duration)
    return replace(made, id=new_id("run", made.finished_at))


async def _world(*rules: Rule) -> tuple[World, Recording]:
    recording = Recording()
    world = World({PlannerKind.RULES: recording}, debounce=300)
    await world.add(SHOP)
    await world.configure(EndpointPlanner(TENANT, SHOP.id, rules=rules))
    return world, recording


async def _record(world: World, *runs: Run) -> None:
    for made in runs:
        world.store._t.add_run(made)
    world.clock.set(max(world.clock.now(), max(r.finished_at for r in runs)))


async def test_a_single_surge_run_between_quiet_ones_fires_its_rule() -> None:
    world, _ = await _world(SURGE)
    await _record(world, shop_run(60), shop_run(120, visitors=5000), shop_run(180))
    await world.loop.tick()
    hint = (await world.get(SHOP.id)).interval_hint
    assert hint is not None
    assert hint.interval == timedelta(seconds=5)
    assert hint.actor.kind is ActorKind.PLANNER
    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=50)
    assert [c.name for s in sessions.items for c in s.tool_calls] == ["rule:surge"]


async def test_two_slow_runs_between_analyses_are_each_evaluated() -> None:
    world, recording = await _world(SLOW)
    runs = [shop_run(60), shop_run(120, duration=5), shop_run(180, duration=5), shop_run(240)]
    await _record(world, *runs)
    await world.loop.tick()
    assert recording.at == [r.id for r in runs]
    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=50)
    assert sorted(c.name for s in sessions.items for c in s.tool_calls) == ["rule:slow"] * 2
    assert (await world.get(SHOP.id)).interval_hint is not None


async def test_runs_are_evaluated_in_order_none_skipped_none_twice() -> None:
    world, recording = await _world(SURGE, SLOW)
    batches = [[shop_run(60 * i + k) for k in range(3)] for i in range(1, 5)]
    late = shop_run(60 * 4, duration=1.5)  # commits after a run that finished later
    for batch in batches:
        await _record(world, *batch)
        await world.loop.tick()
    await _record(world, late)
    await world.loop.ingest()
    await world.loop.tick()
    expected = [r.id for batch in batches for r in batch] + [late.id]
    assert recording.at == expected
    watch = await world.pstore.get_watch(SHOP.id)
    assert watch is None or watch.due_at is None  # its own runs make no analysis due


async def test_a_siblings_news_does_not_judge_a_run_of_its_own_again() -> None:
    world, _ = await _world(SURGE)
    await _record(world, shop_run(60, visitors=5000))
    await world.loop.tick()
    watch = await world.pstore.get_watch(SHOP.id)
    assert watch is not None
    await world.pstore.put_watch(replace(watch, due_at=world.clock.now(), fired={}))
    await world.loop.tick()  # a sibling-change analysis: the surge run is not re-judged
    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=50)
    assert [c.name for s in sessions.items for c in s.tool_calls] == ["rule:surge"]
