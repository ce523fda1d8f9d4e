"""The LLM planner with scripted models (pydantic-ai FunctionModel), through the loop."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic_ai.exceptions import ModelHTTPError

from cadenza.domain.model import ActorKind, Pause
from cadenza.domain.planning import EndpointPlanner, PlannerKind, ProposalStatus, SessionOutcome
from cadenza.planner.llm import LlmOptions, LlmPlanner, briefing

from .factories import T0, TENANT, guarded
from .scripted import Script, call, calls, conclude
from .world import World, ok

pytestmark = pytest.mark.anyio

HEALTH = guarded("health", 10, 600, every=60, description="Checkout health: p95 latency.")
INVESTIGATE = guarded("investigate", 30, None, pause=Pause(None), description="Slow queries.")


async def llm_world(script: Script, **kw: object) -> World:
    world = World(monthly_tokens=kw.pop("monthly_tokens", None), **kw)  # type: ignore[arg-type]
    planner = LlmPlanner(script.model(), world.clock, LlmOptions(max_steps=6))
    world.loop._planners[PlannerKind.LLM] = planner
    await world.add(HEALTH, INVESTIGATE)
    await world.configure(EndpointPlanner(TENANT, HEALTH.id, kind=PlannerKind.LLM))
    return world


async def first_session(world: World):  # type: ignore[no-untyped-def]
    page = await world.pstore.list_sessions(TENANT, endpoint_id=HEALTH.id, cursor=None, limit=50)
    return page.items[-1]


async def test_the_model_reads_then_steers_itself_and_a_sibling_through_the_catalogue() -> None:
    script = Script(
        call("latest_response"),
        call("siblings_latest_responses"),
        calls(
            (
                "apply_interval_hint",
                {
                    "endpoint": "health",
                    "interval_seconds": 15,
                    "ttl_seconds": 1200,
                    "reason": "p95 rising",
                },
            ),
            (
                "pause_or_resume_endpoint",
                {"endpoint": "investigate", "reason": "look at slow queries"},
            ),
            (
                "schedule_one_shot_run",
                {"endpoint": "investigate", "delay_seconds": 0, "reason": "look now"},
            ),
        ),
        conclude("p95 is rising; watching closely and investigating.", 300),
    )
    world = await llm_world(script)
    await world.advance(ok({"p95_ms": 1400}), T0 + timedelta(seconds=95))
    health = await world.get(HEALTH.id)
    assert health.interval_hint is not None
    assert health.interval_hint.interval == timedelta(seconds=15)
    assert health.interval_hint.actor.kind is ActorKind.PLANNER
    sibling = await world.get(INVESTIGATE.id)
    assert not sibling.paused(world.clock.now())
    [woken] = await world.runs_of(INVESTIGATE.id)
    assert woken.source == "hint-one-shot"
    assert "latest_response" in script.tools
    session = await first_session(world)
    assert session.outcome is SessionOutcome.CHANGED
    assert session.model == "scripted"
    assert session.input_tokens > 0
    assert session.summary.startswith("p95 is rising")
    assert session.next_look_at == session.started_at + timedelta(seconds=300)
    names = [c.name for c in session.tool_calls]
    assert names[:3] == ["latest_response", "siblings_latest_responses", "apply_interval_hint"]
    assert len(session.proposal_ids) == 3


async def test_the_briefing_carries_the_description_state_and_trigger() -> None:
    script = Script(conclude())
    world = await llm_world(script)
    await world.advance(ok({"p95_ms": 100}), T0 + timedelta(seconds=91))
    opening = str(script.seen[0][0])
    assert "Checkout health: p95 latency." in opening
    assert "failure" in opening or "new_runs" in opening
    assert "investigate" in opening


async def test_invalid_tool_arguments_are_refused_recorded_and_never_applied() -> None:
    script = Script(
        call(
            "apply_interval_hint",
            endpoint="health",
            interval_seconds="soon",
            ttl_seconds=-3,
            reason="x",
        ),
        call("pause_or_resume_endpoint", endpoint="health", until="next week", reason="x"),
        conclude(),
    )
    world = await llm_world(script)
    await world.advance(ok({"p95_ms": 100}), T0 + timedelta(seconds=91))
    health = await world.get(HEALTH.id)
    assert health.interval_hint is None
    assert not health.paused(world.clock.now())
    session = await first_session(world)
    outcomes = [c.outcome for c in session.tool_calls if c.name != "final_result"]
    assert all(o.startswith("invalid") for o in outcomes), outcomes
    assert session.outcome is SessionOutcome.NO_CHANGE


async def test_a_proposal_outside_the_job_is_refused_and_recorded() -> None:
    script = Script(
        call("schedule_one_shot_run", endpoint="someone-elses", delay_seconds=0, reason="x"),
        conclude(),
    )
    world = await llm_world(script)
    await world.advance(ok(), T0 + timedelta(seconds=91))
    [refused] = world.pstore.proposals.values()
    assert refused.status is ProposalStatus.REFUSED
    assert (await first_session(world)).outcome is SessionOutcome.REFUSED
    assert "refused" in str(script.seen[1][-1])


async def test_clamps_bound_what_the_model_asks_for() -> None:
    script = Script(
        call(
            "apply_interval_hint",
            endpoint="health",
            interval_seconds=1,
            ttl_seconds=30 * 86400,
            reason="hammer it",
        ),
        conclude(),
    )
    world = await llm_world(script)
    await world.advance(ok(), T0 + timedelta(seconds=91))
    hint = (await world.get(HEALTH.id)).interval_hint
    assert hint is not None
    assert hint.interval == timedelta(seconds=10)
    assert hint.expires_at == T0 + timedelta(seconds=90, hours=24)
    [applied] = world.pstore.proposals.values()
    assert "guardrails" in applied.note


async def test_the_step_cap_ends_an_analysis_that_never_concludes() -> None:
    script = Script(call("latest_response"))
    world = await llm_world(script)
    await world.advance(ok(), T0 + timedelta(seconds=91))
    session = await first_session(world)
    assert session.summary.startswith("Stopped early")
    assert len(script.seen) == 6
    assert session.next_look_at == session.started_at + timedelta(hours=1)


async def test_model_errors_are_retried_with_backoff_on_the_clock() -> None:
    boom = ModelHTTPError(503, "scripted", body="overloaded")
    script = Script(boom, boom, conclude("fine after all"))
    world = await llm_world(script)
    await world.advance(ok(), T0 + timedelta(seconds=91))
    session = await first_session(world)
    assert session.summary == "fine after all"
    assert session.finished_at - session.started_at == timedelta(seconds=2 + 4)


async def test_persistent_model_errors_become_an_error_session_and_a_later_retry() -> None:
    script = Script(ModelHTTPError(500, "scripted", body="down"))
    world = await llm_world(script)
    await world.advance(ok(), T0 + timedelta(seconds=91))
    session = await first_session(world)
    assert session.outcome is SessionOutcome.ERROR
    watch = await world.pstore.get_watch(HEALTH.id)
    assert watch is not None
    assert watch.errors == 1
    assert watch.due_at is not None


def test_the_briefing_is_plain_json_after_one_line() -> None:
    import json

    from .factories import observe

    text = briefing(observe(HEALTH))
    facts = json.loads(text.split("\n", 1)[1])
    assert facts["endpoint"]["name"] == "health"
    assert facts["latest_run"] is None


async def test_a_tool_argument_of_the_wrong_json_type_is_refused_not_coerced() -> None:
    script = Script(
        call("apply_interval_hint", endpoint="health", interval_seconds=True, reason="x"),
        conclude(),
    )
    world = await llm_world(script)
    await world.advance(ok({"p95_ms": 100}), T0 + timedelta(seconds=91))
    assert (await world.get(HEALTH.id)).interval_hint is None
    session = await first_session(world)
    [refused] = [c for c in session.tool_calls if c.name == "apply_interval_hint"]
    assert refused.outcome.startswith("invalid")
