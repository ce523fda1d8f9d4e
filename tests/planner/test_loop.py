"""The planner loop over a MemoryStore: triggers, sessions, approval, errors, switches."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from cadenza.actions.base import invoke
from cadenza.actions.planner import ACTIONS as PLANNER_ACTIONS
from cadenza.domain import errors
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import ActorKind, Pause, RunStatus
from cadenza.domain.planning import (
    EndpointPlanner,
    PlannerKind,
    Policies,
    ProposalStatus,
    ResponseMatches,
    Rule,
    SessionOutcome,
    Step,
    TightenOnFailures,
    Trigger,
    Verb,
)
from cadenza.ids import new_id
from cadenza.planner.port import Analysis, Observation, Sink
from cadenza.planner.rules_planner import RulesPlanner
from cadenza.ports import AuditFilter

from .factories import T0, TENANT, guarded, job, run
from .world import Reply, World, ok

pytestmark = pytest.mark.anyio
ACTION = {a.name: a for a in PLANNER_ACTIONS}

HEALTH = guarded("health", 10, 600, every=60)
TIGHTEN = EndpointPlanner(
    TENANT, HEALTH.id, policies=Policies(tighten_on_failures=TightenOnFailures(streak=2))
)
BY_MODEL = replace(TIGHTEN, kind=PlannerKind.LLM)
"""Its analyses are debounced; the rules planner's are not (test_rules_every_run)."""


def failing(_ep: object) -> Reply:
    return Reply(status=RunStatus.FAILURE, http_status=500)


async def test_a_failure_streak_tightens_the_schedule_through_the_catalogue() -> None:
    world = World()
    await world.add(HEALTH)
    await world.configure(TIGHTEN)
    await world.advance(failing, T0 + timedelta(minutes=4))
    ep = await world.get(HEALTH.id)
    assert ep.interval_hint is not None
    assert ep.interval_hint.interval == timedelta(seconds=10)
    assert ep.interval_hint.actor.kind is ActorKind.PLANNER
    async with world.store.transaction(readonly=True) as tx:
        audit = await tx.list_audit(TENANT, AuditFilter(target_id=HEALTH.id), cursor=None, limit=10)
    assert [e.action for e in audit.items] == ["apply_interval_hint"]
    assert audit.items[0].actor.kind is ActorKind.PLANNER
    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=50)
    assert SessionOutcome.CHANGED in [s.outcome for s in sessions.items]
    assert all(s.planner is PlannerKind.RULES for s in sessions.items)


async def test_new_failures_are_analysed_at_once_and_other_runs_after_the_debounce() -> None:
    world = World(debounce=30)
    await world.add(HEALTH)
    await world.configure(BY_MODEL)
    world.clock.set(T0 + timedelta(seconds=60))
    await world.run_due(ok({"v": 1}))
    await world.loop.ingest()
    watch = await world.pstore.get_watch(HEALTH.id)
    assert watch is not None
    assert (watch.due_at, watch.trigger) == (
        world.clock.now() + timedelta(seconds=30),
        Trigger.NEW_RUNS,
    )
    world.clock.set(T0 + timedelta(seconds=90))
    await world.loop.tick()
    assert (await world.pstore.get_watch(HEALTH.id)).due_at is None  # type: ignore[union-attr]
    world.clock.set(T0 + timedelta(seconds=120))
    await world.run_due(failing)
    await world.loop.ingest()
    watch = await world.pstore.get_watch(HEALTH.id)
    assert watch is not None
    assert watch.trigger is Trigger.FAILURE
    assert watch.due_at == world.clock.now()


async def test_more_runs_within_the_debounce_do_not_postpone_the_analysis() -> None:
    world = World(debounce=300)
    await world.add(HEALTH)
    await world.configure(BY_MODEL)
    world.clock.set(T0 + timedelta(seconds=60))
    await world.run_due(ok({"v": 1}))
    await world.loop.ingest()
    first = await world.pstore.get_watch(HEALTH.id)
    world.clock.set(T0 + timedelta(seconds=120))
    await world.run_due(ok({"v": 1}))
    await world.loop.ingest()
    assert await world.pstore.get_watch(HEALTH.id) == first


class LookAgainLater:
    """A planner that changes nothing and asks to look again in ten minutes."""

    def __init__(self) -> None:
        self.calls: list[Observation] = []

    @property
    def kind(self) -> PlannerKind:
        return PlannerKind.LLM

    @property
    def model_name(self) -> str:
        return "stub"

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis:
        self.calls.append(obs)
        return Analysis("steady", obs.now + timedelta(minutes=10), model="stub", input_tokens=7)


async def test_the_planner_is_called_again_at_the_time_it_asked_for() -> None:
    stub = LookAgainLater()
    world = World({PlannerKind.LLM: stub})
    quiet = guarded("quiet", every=86400)
    await world.add(quiet)
    await world.configure(EndpointPlanner(TENANT, quiet.id, kind=PlannerKind.LLM))
    await world.pstore.put_watch(
        replace(await world.loop._watch(TENANT, quiet.id, "job_1"), due_at=T0)
    )
    await world.advance(ok(), T0 + timedelta(minutes=25))
    assert [o.now for o in stub.calls] == [
        T0,
        T0 + timedelta(minutes=10),
        T0 + timedelta(minutes=20),
    ]
    assert stub.calls[1].trigger is Trigger.REQUESTED
    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=quiet.id, cursor=None, limit=9)
    assert sessions.items[0].next_look_at == T0 + timedelta(minutes=30)
    assert await world.budget.allowance(TENANT, T0) is None
    assert world.pstore.tokens[(TENANT, "2026-03")] == 21


async def test_a_change_of_a_sibling_makes_its_paused_siblings_due() -> None:
    world = World(debounce=5)
    sleeper = guarded("investigate", pause=Pause(None))
    busy = guarded("busy", every=60)
    await world.add(HEALTH, sleeper, busy)
    world.clock.set(T0 + timedelta(seconds=60))
    await world.run_due(ok({"p95_ms": 100}))
    await world.loop.ingest()
    sleeper_watch = await world.pstore.get_watch(sleeper.id)
    assert sleeper_watch is not None
    assert sleeper_watch.trigger is Trigger.SIBLING_CHANGED
    assert await world.pstore.get_watch(busy.id) is None or (
        (await world.pstore.get_watch(busy.id)).trigger is not Trigger.SIBLING_CHANGED  # type: ignore[union-attr]
    )


class Exploding:
    @property
    def kind(self) -> PlannerKind:
        return PlannerKind.LLM

    @property
    def model_name(self) -> str:
        return "volcano-1"

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis:
        raise RuntimeError("model on fire")


async def test_a_failing_analysis_is_recorded_and_retried_with_backoff() -> None:
    world = World(
        {
            PlannerKind.LLM: Exploding(),
            PlannerKind.RULES: RulesPlanner(),
        }
    )
    await world.add(HEALTH)
    await world.configure(EndpointPlanner(TENANT, HEALTH.id, kind=PlannerKind.LLM))
    await world.advance(ok(), T0 + timedelta(seconds=61))
    await world.advance(ok(), T0 + timedelta(seconds=95))
    sessions = await world.pstore.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=9)
    assert [s.outcome for s in sessions.items] == [SessionOutcome.ERROR]
    assert "model on fire" in sessions.items[0].error
    assert sessions.items[0].planner is PlannerKind.LLM
    assert sessions.items[0].model == "volcano-1"
    watch = await world.pstore.get_watch(HEALTH.id)
    assert watch is not None
    assert watch.errors == 1
    assert watch.due_at == T0 + timedelta(seconds=90 + 30)
    assert len(await world.runs_of(HEALTH.id)) == 1


async def test_switching_the_planner_off_for_the_endpoint_or_the_job_stops_analyses() -> None:
    for ep, the_job in (
        (replace(HEALTH, planner_enabled=False), job()),
        (HEALTH, job(planner_enabled=False)),
    ):
        world = World()
        await world.add(ep, the_job=the_job)
        await world.configure(TIGHTEN)
        await world.advance(failing, T0 + timedelta(minutes=5))
        assert world.pstore.sessions == {}
        assert (await world.get(HEALTH.id)).interval_hint is None


SIBLING = guarded("investigate", every=300)
WAKE = EndpointPlanner(
    TENANT,
    HEALTH.id,
    rules=(
        Rule(
            "slow",
            (ResponseMatches(Comparison(Op.GT, 800, "/p95_ms")),),
            (Step(Verb.ONE_SHOT, target="investigate"), Step(Verb.ONE_SHOT, target="elsewhere")),
        ),
    ),
)


async def test_an_intent_outside_the_job_is_refused_and_recorded_never_applied() -> None:
    world = World()
    await world.add(HEALTH, SIBLING)
    await world.configure(WAKE)
    await world.advance(ok({"p95_ms": 900}), T0 + timedelta(seconds=95))
    refused = await world.pstore.list_proposals(
        TENANT, status=ProposalStatus.REFUSED, endpoint_id=None, cursor=None, limit=9
    )
    assert [p.target_id for p in refused.items] == ["elsewhere"]
    assert "not this endpoint or a sibling" in refused.items[0].note
    applied = await world.pstore.list_proposals(
        TENANT, status=ProposalStatus.APPLIED, endpoint_id=None, cursor=None, limit=9
    )
    assert [p.target_id for p in applied.items] == [SIBLING.id]


async def test_approval_mode_keeps_proposals_pending_until_a_person_decides() -> None:
    world = World()
    await world.add(HEALTH, SIBLING)
    await world.configure(replace(WAKE, approval=True))
    await world.advance(ok({"p95_ms": 900}), T0 + timedelta(seconds=95))
    assert (await world.get(SIBLING.id)).one_shots == ()
    page = await invoke(ACTION["list_proposals"], world.ctx(), {"status": "pending"})
    [pending] = page.items
    assert pending.target_id == SIBLING.id
    assert pending.action == "schedule_one_shot_run"
    out = await invoke(
        ACTION["decide_proposal"], world.ctx(), {"proposal_id": pending.id, "decision": "approve"}
    )
    assert out.status is ProposalStatus.APPLIED
    assert out.decided_by is not None
    assert out.decided_by.kind == "user"
    assert (await world.get(SIBLING.id)).one_shots != ()
    with pytest.raises(errors.AlreadyDecided):
        await invoke(
            ACTION["decide_proposal"],
            world.ctx(),
            {"proposal_id": pending.id, "decision": "reject"},
        )


async def test_a_rejected_proposal_is_never_applied() -> None:
    world = World()
    await world.add(HEALTH, SIBLING)
    await world.configure(replace(WAKE, approval=True))
    await world.advance(ok({"p95_ms": 900}), T0 + timedelta(seconds=95))
    pending = next(p for p in world.pstore.proposals.values() if p.status is ProposalStatus.PENDING)
    out = await invoke(
        ACTION["decide_proposal"], world.ctx(), {"proposal_id": pending.id, "decision": "reject"}
    )
    assert out.status is ProposalStatus.REJECTED
    assert (await world.get(SIBLING.id)).one_shots == ()


async def test_an_approved_proposal_the_schedule_refuses_by_then_is_marked_refused() -> None:
    world = World()
    await world.add(HEALTH)
    retry = EndpointPlanner(
        TENANT, HEALTH.id, approval=True, policies=Policies(honour_retry_after=True)
    )
    await world.configure(retry)
    limited = Reply(RunStatus.FAILURE, 429, headers=(("Retry-After", "60"),))
    await world.advance(lambda _ep: limited, T0 + timedelta(seconds=61))
    [pending] = world.pstore.proposals.values()
    assert pending.verb is Verb.PAUSE
    world.clock.advance(timedelta(minutes=5))
    out = await invoke(
        ACTION["decide_proposal"], world.ctx(), {"proposal_id": pending.id, "decision": "approve"}
    )
    assert out.status is ProposalStatus.REFUSED
    assert "future" in out.note
    assert not (await world.get(HEALTH.id)).paused(world.clock.now())


async def test_planner_settings_round_trip_through_the_actions() -> None:
    world = World()
    await world.add(HEALTH)
    payload = {
        "endpoint_id": HEALTH.id,
        "kind": "rules",
        "approval": True,
        "rules": [
            {
                "name": "slow",
                "when": [
                    {"kind": "response", "op": "gt", "value": 800, "json_pointer": "/p95_ms"},
                    {
                        "kind": "sibling",
                        "sibling": "db",
                        "condition": {"kind": "outcome", "statuses": ["failure"]},
                    },
                    {"kind": "metric", "metric": "failure_streak", "op": "ge", "value": 2},
                    {"kind": "response_change", "changed": False, "runs": 3},
                ],
                "then": [{"verb": "interval_hint", "interval_seconds": 15, "ttl_seconds": 600}],
                "for_runs": 2,
                "cooldown_seconds": 60,
            }
        ],
        "policies": {"adaptive_polling": {"unchanged_runs": 4}, "honour_retry_after": True},
    }
    await invoke(ACTION["set_endpoint_planner"], world.ctx(), payload)
    stored = await world.pstore.get_planner(TENANT, HEALTH.id)
    assert stored.approval
    assert stored.rules[0].for_runs == 2
    out = await invoke(ACTION["get_endpoint_planner"], world.ctx(), {"endpoint_id": HEALTH.id})
    assert out.settings.model_dump(mode="json")["rules"][0]["when"][1]["sibling"] == "db"
    again = out.settings.to_domain(TENANT, HEALTH.id)
    assert again == stored


async def test_settings_with_an_invalid_rule_are_refused() -> None:
    world = World()
    await world.add(HEALTH)
    bad = {"endpoint_id": HEALTH.id, "rules": [{"name": "x", "when": [], "then": []}]}
    with pytest.raises(errors.ValidationError):
        await invoke(ACTION["set_endpoint_planner"], world.ctx(), bad)
    paused_without_time = {
        "endpoint_id": HEALTH.id,
        "rules": [
            {
                "name": "x",
                "when": [{"kind": "outcome", "statuses": ["failure"]}],
                "then": [{"verb": "pause"}],
            }
        ],
    }
    with pytest.raises(errors.ValidationError):
        await invoke(ACTION["set_endpoint_planner"], world.ctx(), paused_without_time)


async def test_sessions_are_listed_by_the_action() -> None:
    world = World()
    await world.add(HEALTH)
    await world.configure(TIGHTEN)
    await world.advance(failing, T0 + timedelta(minutes=4))
    page = await invoke(ACTION["list_planner_sessions"], world.ctx(), {"endpoint_id": HEALTH.id})
    assert page.items
    assert page.items[0].planner == "rules"
    assert all(s.endpoint_id == HEALTH.id for s in page.items)


async def test_a_run_that_commits_after_a_later_one_is_still_observed_once() -> None:
    world = World()
    other = guarded("other", every=60)
    await world.add(HEALTH, other)
    await world.configure(EndpointPlanner(TENANT, other.id, kind=PlannerKind.LLM))
    at = T0 + timedelta(seconds=100)
    later = replace(run(HEALTH, at), id=new_id("run", at))
    earlier_at = at - timedelta(seconds=1)
    earlier = replace(run(other, earlier_at), id=new_id("run", earlier_at))
    world.store._t.add_run(later)
    world.clock.set(at)
    assert await world.loop.ingest() == 1
    world.store._t.add_run(earlier)
    assert await world.loop.ingest() == 1
    assert await world.pstore.get_watch(other.id) is not None
    assert await world.loop.ingest() == 0
