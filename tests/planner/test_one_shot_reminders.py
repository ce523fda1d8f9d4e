"""The rules planner queues reminders days apart (issue #16, missing capability 3):
one rule with one-shot steps at 7, 14 and 21 days queues all three, and each runs
once, in order, at its time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import ActorKind, PlanSource
from cadenza.domain.planning import EndpointPlanner, ResponseMatches, Rule, Step, Verb
from cadenza.ids import new_id

from .factories import T0, TENANT, guarded, run
from .world import World, ok

pytestmark = pytest.mark.anyio

DAYS = (7, 14, 21)
MONTHLY = guarded("renewals", every=30 * 86400)
REMIND = Rule(
    "remind",
    when=(ResponseMatches(Comparison(Op.EQ, "trial", "/plan")),),
    then=tuple(Step(Verb.ONE_SHOT, delay=timedelta(days=d)) for d in DAYS),
)


async def test_a_rule_queues_reminders_at_7_14_and_21_days_that_each_run_once() -> None:
    world = World(debounce=300)
    await world.add(MONTHLY)
    await world.pstore.put_planner(EndpointPlanner(TENANT, MONTHLY.id, rules=(REMIND,)))
    signal = run(MONTHLY, T0 + timedelta(seconds=1), body={"plan": "trial"})
    world.store._t.add_run(replace(signal, id=new_id("run", signal.finished_at)))
    world.clock.set(signal.finished_at)
    await world.loop.tick()
    fired_at = world.clock.now()
    queued = (await world.get(MONTHLY.id)).one_shots
    assert [s.run_at for s in queued] == [fired_at + timedelta(days=d) for d in DAYS]
    assert {s.actor.kind for s in queued} == {ActorKind.PLANNER}

    runs = await world.advance(ok({"plan": "paid"}), fired_at + timedelta(days=22))
    assert [(r.started_at, r.source) for r in runs] == [
        (fired_at + timedelta(days=d), PlanSource.HINT_ONE_SHOT) for d in DAYS
    ]
    assert (await world.get(MONTHLY.id)).one_shots == ()
