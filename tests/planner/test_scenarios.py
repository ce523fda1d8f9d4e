"""Scenarios from the seeds (the flash sale's health → investigation tiers)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import ActorKind, Endpoint, Pause
from cadenza.domain.planning import (
    EndpointPlanner,
    PlannerKind,
    ResponseMatches,
    Rule,
    SessionOutcome,
    SiblingLatest,
    Step,
    Verb,
)
from cadenza.planner.llm import LlmOptions, LlmPlanner

from .factories import T0, TENANT, guarded
from .scripted import Script, call, conclude
from .world import Reply, World

pytestmark = pytest.mark.anyio

HEALTH = guarded("checkout-health", 10, 600, every=60, tier="health")
INVESTIGATE = guarded(
    "slow-query-log", 60, None, every=300, tier="investigation", pause=Pause(None)
)

WAKE_ON_SLOW_CHECKOUT = EndpointPlanner(
    TENANT,
    INVESTIGATE.id,
    rules=(
        Rule(
            "checkout is slow",
            (SiblingLatest("checkout-health", ResponseMatches(Comparison(Op.GT, 800, "/p95_ms"))),),
            (Step(Verb.RESUME), Step(Verb.ONE_SHOT)),
        ),
        Rule(
            "checkout is fine again",
            (SiblingLatest("checkout-health", ResponseMatches(Comparison(Op.LT, 300, "/p95_ms"))),),
            (Step(Verb.PAUSE, delay=timedelta(hours=6)),),
        ),
    ),
)


def degrading(start: datetime) -> object:
    """p95 latency of the checkout: calm, then degrading from minute 5, calm after 15."""

    def respond(ep: Endpoint) -> Reply:
        minute = (ep.next_run_at or start) - start
        if ep.name != "checkout-health":
            return Reply(body={"slow_queries": 3})
        if minute < timedelta(minutes=5) or minute >= timedelta(minutes=15):
            return Reply(body={"p95_ms": 120})
        return Reply(body={"p95_ms": 200 * (minute // timedelta(minutes=1) - 3)})

    return respond


async def test_a_paused_investigation_endpoint_is_woken_by_its_siblings_degrading_responses() -> (
    None
):
    world = World(debounce=5)
    await world.add(HEALTH, INVESTIGATE)
    await world.configure(WAKE_ON_SLOW_CHECKOUT)
    respond = degrading(T0)
    await world.advance(respond, T0 + timedelta(minutes=7))  # type: ignore[arg-type]
    assert await world.runs_of(INVESTIGATE.id) == []
    assert (await world.get(INVESTIGATE.id)).paused(world.clock.now())

    await world.advance(respond, T0 + timedelta(minutes=9))  # type: ignore[arg-type]
    woken = await world.get(INVESTIGATE.id)
    assert not woken.paused(world.clock.now())
    first = (await world.runs_of(INVESTIGATE.id))[-1]
    assert first.source == "hint-one-shot"
    # p95 crossed 800 ms with the run at minute 8; the investigation ran seconds later.
    assert first.started_at - (T0 + timedelta(minutes=8)) < timedelta(seconds=10)

    await world.advance(respond, T0 + timedelta(minutes=17))  # type: ignore[arg-type]
    calm = await world.get(INVESTIGATE.id)
    assert calm.pause is not None
    assert calm.pause.actor.kind is ActorKind.PLANNER
    assert calm.pause.until is not None
    assert calm.pause.until <= world.clock.now() + timedelta(hours=6)
    sessions = await world.pstore.list_sessions(
        TENANT, endpoint_id=INVESTIGATE.id, cursor=None, limit=100
    )
    wake = next(s for s in reversed(sessions.items) if s.outcome is SessionOutcome.CHANGED)
    assert wake.trigger.value == "sibling_changed"


def always_ok(ep: Endpoint) -> Reply:
    return Reply(body={"p95_ms": 100})


async def run_times(world: World, until: datetime) -> list[datetime]:
    await world.advance(always_ok, until)
    return sorted(r.started_at for r in await world.runs_of(HEALTH.id))


async def test_an_exhausted_budget_skips_and_records_analyses_and_leaves_scheduling_alone() -> None:
    script = Script(call("latest_response"), conclude("steady", 60))
    world = World(monthly_tokens=500)
    world.loop._planners[PlannerKind.LLM] = LlmPlanner(script.model(), world.clock, LlmOptions())
    await world.add(HEALTH)
    await world.configure(EndpointPlanner(TENANT, HEALTH.id, kind=PlannerKind.LLM))
    times = await run_times(world, T0 + timedelta(minutes=10))

    baseline = World()
    await baseline.add(HEALTH)
    assert times == await run_times(baseline, T0 + timedelta(minutes=10))
    assert times == [T0 + timedelta(minutes=m) for m in range(1, 11)]

    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=100)
    outcomes = [s.outcome for s in reversed(sessions.items)]
    first_skip = outcomes.index(SessionOutcome.SKIPPED_BUDGET)
    assert first_skip >= 1
    assert SessionOutcome.SKIPPED_BUDGET not in outcomes[:first_skip]
    assert set(outcomes[first_skip:]) == {SessionOutcome.SKIPPED_BUDGET}
    assert len(outcomes) - first_skip >= 5
    skipped = sessions.items[0]
    assert "budget" in skipped.error
    assert skipped.tokens == 0
    spent = sum(s.tokens for s in sessions.items)
    assert world.pstore.tokens[(TENANT, "2026-03")] == spent >= 500
    requests_while_funded = len(script.seen)
    await run_times(world, T0 + timedelta(minutes=20))
    assert len(script.seen) == requests_while_funded
    hint_free = await world.get(HEALTH.id)
    assert hint_free.interval_hint is None
    assert hint_free.next_run_at == T0 + timedelta(minutes=21)


async def test_analyses_resume_when_a_new_month_brings_a_new_budget() -> None:
    script = Script(conclude("steady", 3600))
    world = World(monthly_tokens=100)
    world.loop._planners[PlannerKind.LLM] = LlmPlanner(script.model(), world.clock, LlmOptions())
    await world.add(HEALTH)
    await world.configure(EndpointPlanner(TENANT, HEALTH.id, kind=PlannerKind.LLM))
    await world.pstore.add_tokens(TENANT, "2026-03", 100)
    await world.advance(always_ok, T0 + timedelta(minutes=2))
    assert script.seen == []
    world.clock.set(datetime.fromisoformat("2026-04-01T00:00:00+00:00"))
    await world.advance(always_ok, world.clock.now() + timedelta(minutes=2))
    assert len(script.seen) >= 1
