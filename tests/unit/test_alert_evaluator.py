"""The evaluator over the fakes: success rates, late runs, reminders, planner
escalations, and rules whose endpoint is gone; every notice through one notifier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza.actions import BY_NAME, invoke
from cadenza.actions.base import Context, Services
from cadenza.domain.alerts import NoticeKind
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import Actor, ActorKind, Run, RunStatus
from cadenza.domain.planning import Proposal, ProposalStatus, Verb
from cadenza.ids import new_id
from cadenza.notify.delivery import Notifier
from cadenza.notify.incidents import AlertEvaluator
from cadenza.ports import Completion
from cadenza.testing import FakeDispatcher, FrozenClock, MemoryStore
from cadenza.testing.notify_store import MemoryNotifyStore, RecordingMailer
from cadenza.testing.planner_store import MemoryPlannerStore

pytestmark = pytest.mark.anyio
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class _Waker:
    def wake(self) -> None:
        pass


@dataclass
class World:
    ctx: Context
    clock: FrozenClock
    http: FakeDispatcher
    notify: MemoryNotifyStore
    planner: MemoryPlannerStore
    evaluator: AlertEvaluator

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        return await invoke(BY_NAME[name], self.ctx, arguments)

    async def tick(self) -> list[str]:
        """Tick, and return the kinds of the notices posted since the last tick."""
        before = len(self.http.calls)
        await self.evaluator.tick(self.clock.now())
        return [c.endpoint.request.body.json["event"] for c in self.http.calls[before:]]  # type: ignore[union-attr]


@pytest.fixture
def world() -> World:
    clock = FrozenClock(START)
    store, notify, planner = MemoryStore(), MemoryNotifyStore(), MemoryPlannerStore()
    http = FakeDispatcher(clock)
    notifier = Notifier(notify, http, RecordingMailer(), clock)
    services = Services(
        store=store,
        clock=clock,
        waker=_Waker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=b"k" * 32,
        planner=planner,
        notify=notify,
        notices=notifier,
    )
    ctx = Context.for_caller(services, "t1", Actor(ActorKind.USER, "usr_1", "ana"), ALL_SCOPES)
    evaluator = AlertEvaluator(store, notify, notifier, planner=planner)
    return World(ctx, clock, http, notify, planner, evaluator)


async def _endpoint(world: World) -> str:
    job = await world.call("create_job", {"name": "shop"})
    endpoint = await world.call(
        "add_endpoint",
        {
            "job_id": job.id,
            "name": "checkout",
            "request": {"url": "https://shop.example.com/checkout"},
            "baseline": {"interval_seconds": 60},
        },
    )
    await world.call(
        "create_channel", {"name": "hook", "kind": "webhook", "url": "https://hooks.example.com/"}
    )
    return str(endpoint.id)


async def _run(world: World, status: RunStatus) -> None:
    store = world.ctx.store
    due = await store.next_due_at()
    assert due is not None
    world.clock.set(max(due, world.clock.now()))
    now = world.clock.now()
    (claim,) = await store.claim_due(
        "w1", now, lookahead=timedelta(seconds=1), limit=5, lease_margin=timedelta(seconds=30)
    )
    run = Run(
        new_id("run", now),
        claim.endpoint.id,
        claim.endpoint.job_id,
        "t1",
        claim.scheduled_for,
        now,
        now,
        status,
        claim.source,
    )
    await store.complete("w1", [Completion(claim, run)], now)


async def test_a_low_success_rate_opens_reminds_after_its_interval_and_resolves(
    world: World,
) -> None:
    endpoint_id = await _endpoint(world)
    await world.call(
        "create_alert_rule",
        {
            "name": "flaky",
            "kind": "success_rate",
            "endpoint_id": endpoint_id,
            "min_success_rate": 0.75,
            "window_seconds": 3600,
            "renotify_every_seconds": 600,
        },
    )
    for status in (RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.SUCCESS):
        await _run(world, status)
    assert await world.tick() == ["incident.opened"]
    world.clock.advance(timedelta(minutes=5))
    assert await world.tick() == []
    world.clock.advance(timedelta(minutes=6))
    assert await world.tick() == ["incident.reminder"]
    for _ in range(6):
        await _run(world, RunStatus.SUCCESS)
    assert await world.tick() == ["incident.resolved"]
    (incident,) = (await world.call("list_incidents", {})).items
    assert incident.notifications == 2
    deliveries = (await world.call("get_incident", {"incident_id": incident.id})).deliveries
    assert [d.kind for d in deliveries] == [
        NoticeKind.OPENED,
        NoticeKind.REMINDER,
        NoticeKind.RESOLVED,
    ]


async def test_an_endpoint_that_stops_running_opens_a_no_run_incident(world: World) -> None:
    await _endpoint(world)
    await world.call("create_alert_rule", {"name": "late", "kind": "no_run"})
    await _run(world, RunStatus.SUCCESS)
    assert await world.tick() == []
    world.clock.advance(timedelta(minutes=7))
    assert await world.tick() == ["incident.opened"]
    await _run(world, RunStatus.SUCCESS)
    assert await world.tick() == ["incident.resolved"]


async def test_a_planner_change_awaiting_approval_is_an_escalation_until_decided(
    world: World,
) -> None:
    endpoint_id = await _endpoint(world)
    await world.call("create_alert_rule", {"name": "planner", "kind": "planner_escalation"})
    now = world.clock.now()
    proposal = Proposal(
        new_id("prp", now),
        "t1",
        new_id("pss", now),
        endpoint_id,
        endpoint_id,
        Verb.INTERVAL_HINT,
        {"interval_seconds": 30, "ttl_seconds": 600, "reason": "failing"},
        ProposalStatus.PENDING,
        now,
    )
    await world.planner.insert_proposal(proposal)
    assert await world.tick() == ["incident.opened"]
    assert await world.tick() == []
    await world.call("decide_proposal", {"proposal_id": proposal.id, "decision": "reject"})
    assert await world.tick() == ["incident.resolved"]


async def test_an_incident_whose_endpoint_is_deleted_resolves(world: World) -> None:
    endpoint_id = await _endpoint(world)
    await world.call(
        "create_alert_rule",
        {"name": "down", "kind": "consecutive_failures", "failures": 1, "endpoint_id": endpoint_id},
    )
    await _run(world, RunStatus.FAILURE)
    assert await world.tick() == ["incident.opened"]
    await world.call("delete_endpoint", {"endpoint_id": endpoint_id})
    assert await world.tick() == ["incident.resolved"]


async def test_deleting_a_rule_resolves_its_open_incident_without_a_notice(world: World) -> None:
    endpoint_id = await _endpoint(world)
    rule = await world.call(
        "create_alert_rule",
        {"name": "down", "kind": "consecutive_failures", "failures": 1, "endpoint_id": endpoint_id},
    )
    await _run(world, RunStatus.FAILURE)
    assert await world.tick() == ["incident.opened"]
    await world.call("delete_alert_rule", {"rule_id": rule.id})
    assert await world.tick() == []
    assert (await world.call("list_incidents", {"open_only": True})).items == []
