"""A deterministic world for planner tests: a MemoryStore driven like the scheduler
(claim what is due, record a run, complete), a FrozenClock, and the planner loop."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cadenza.actions.base import Context, Services
from cadenza.domain import lifecycle
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import (
    Actor,
    ActorKind,
    Endpoint,
    Job,
    ResponseCapture,
    Run,
    RunStatus,
)
from cadenza.domain.planning import EndpointPlanner, PlannerKind
from cadenza.ids import new_id
from cadenza.planner.budget import Budget
from cadenza.planner.loop import LoopOptions, PlannerLoop
from cadenza.planner.port import Planner
from cadenza.planner.rules_planner import RulesPlanner
from cadenza.ports import Claim, Completion, DispatchResult, RunFilter
from cadenza.testing import FrozenClock, MemoryStore
from cadenza.testing.planner_store import MemoryPlannerStore

from .factories import T0, TENANT, job

PERSON = Actor(ActorKind.USER, TENANT, "ana")


@dataclass(frozen=True)
class Reply:
    status: RunStatus = RunStatus.SUCCESS
    http_status: int | None = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


Responder = Callable[[Endpoint], Reply]


class NullWaker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


class NullDispatcher:
    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        raise AssertionError("the planner never dispatches")

    async def close(self) -> None:
        return None


class World:
    def __init__(
        self,
        planners: Mapping[PlannerKind, Planner] | None = None,
        *,
        monthly_tokens: int | None = None,
        debounce: float = 30,
        concurrency: int = 8,
        deadline: float = 180,
    ) -> None:
        self.clock = FrozenClock(T0)
        self.store = MemoryStore()
        self.pstore = MemoryPlannerStore(self.store)
        self.waker = NullWaker()
        self.services = Services(
            self.store, self.clock, self.waker, NullDispatcher(), b"k" * 32, planner=self.pstore
        )
        self.budget = Budget(self.pstore, monthly_tokens)
        self.loop = PlannerLoop(
            self.services,
            self.pstore,
            planners or {PlannerKind.RULES: RulesPlanner()},
            self.budget,
            LoopOptions(
                debounce=timedelta(seconds=debounce),
                concurrency=concurrency,
                deadline=timedelta(seconds=deadline),
            ),
        )
        self.runs: list[Run] = []

    def ctx(self, actor: Actor = PERSON) -> Context:
        return Context.for_caller(self.services, TENANT, actor, ALL_SCOPES)

    async def add(self, *endpoints: Endpoint, the_job: Job | None = None) -> None:
        the_job = the_job or job()
        async with self.store.transaction() as tx:
            await tx.insert_job(the_job)
            for ep in endpoints:
                await tx.insert_endpoint(lifecycle.replan(ep, the_job, self.clock.now()))

    async def configure(self, config: EndpointPlanner) -> None:
        await self.pstore.put_planner(config)

    async def get(self, endpoint_id: str) -> Endpoint:
        async with self.store.transaction(readonly=True) as tx:
            return await tx.get_endpoint(TENANT, endpoint_id)

    async def run_due(self, respond: Responder) -> list[Run]:
        """Run every endpoint due now, as a worker would."""
        now = self.clock.now()
        claims = await self.store.claim_due(
            "w1", now, lookahead=timedelta(0), limit=100, lease_margin=timedelta(seconds=30)
        )
        done = []
        for claim in claims:
            reply = respond(claim.endpoint)
            done.append(Completion(claim, _run(claim, now, reply)))
        await self.store.complete("w1", done, now)
        self.runs.extend(d.run for d in done)
        return [d.run for d in done]

    async def advance(self, respond: Responder, until: datetime) -> list[Run]:
        """Run the schedule until ``until``, ticking the planner after each step."""
        runs: list[Run] = []
        while True:
            due = await self.store.next_due_at()
            planned = min(
                (w.due_at for w in self.pstore.watches.values() if w.due_at), default=None
            )
            step = min((t for t in (due, planned) if t is not None), default=None)
            if step is None or step > until:
                self.clock.set(max(until, self.clock.now()))
                await self.loop.tick()
                return runs
            self.clock.set(max(step, self.clock.now()))
            runs.extend(await self.run_due(respond))
            await self.loop.tick()

    async def runs_of(self, endpoint_id: str) -> list[Run]:
        async with self.store.transaction(readonly=True) as tx:
            page = await tx.list_runs(
                TENANT, RunFilter(endpoint_id=endpoint_id), cursor=None, limit=500
            )
        return page.items


def _run(claim: Claim, now: datetime, reply: Reply) -> Run:
    ep = claim.endpoint
    response = None
    if reply.body is not None or reply.headers:
        raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        response = ResponseCapture(raw, "application/json", len(raw), False, reply.headers)
    return Run(
        id=new_id("run", now),
        endpoint_id=ep.id,
        job_id=ep.job_id,
        tenant_id=ep.tenant_id,
        scheduled_for=claim.scheduled_for,
        started_at=now,
        finished_at=now,
        status=reply.status,
        source=claim.source,
        http_status=reply.http_status,
        response=response,
    )


def ok(body: Any = None) -> Responder:
    return lambda _ep: Reply(body=body)
