"""The harness: a discrete-event loop on a virtual clock over Cadenza's real parts.

Setup goes through the catalogue as a person would (``create_job``,
``add_endpoint``, ``set_endpoint_planner``, ``pause_or_resume_endpoint``,
``schedule_one_shot_run``). Then, until the scenario ends, the loop jumps the
``FrozenClock`` to the next event, the earliest of:

* a due endpoint: claimed with the store's ``claim_due`` (the scheduler's call),
  dispatched to the simulated targets, and turned into a run by the scheduler's own
  ``run_from``;
* a run finishing: handed to the store's ``complete``, which records it and asks the
  governor for the next slot (``lifecycle.after_run``);
* a planner watch falling due: ``PlannerLoop.tick`` with the rules planner, whose
  proposals reach schedules only through the catalogue's actions.

No real time passes and nothing touches the network. Ids draw their random bits from
``random.Random(seed)``, so a seed replays byte for byte.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cadenza import ids
from cadenza.actions import BY_NAME, AnyAction, Context, Services, invoke
from cadenza.actions.planner import ACTIONS as PLANNER_ACTIONS
from cadenza.actions.wire import rfc3339
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import Actor, ActorKind, Run
from cadenza.domain.planning import PlannerKind
from cadenza.planner.budget import Budget
from cadenza.planner.loop import LoopOptions, PlannerLoop
from cadenza.planner.rules_planner import RulesPlanner
from cadenza.ports import AuditFilter, Completion, RunFilter, Store
from cadenza.scheduler.tickets import run_from
from cadenza.simulation.result import ChangeRecord, Mode, RunRecord, SimulationResult, figures
from cadenza.simulation.scenario import EndpointSpec, Scenario, load_scenario
from cadenza.simulation.stores import open_stores
from cadenza.simulation.world import SimulatedTargets, World
from cadenza.testing import FrozenClock
from cadenza.testing.planner_store import MemoryPlannerStore

TENANT = "usr_simulation"
OWNER = Actor(ActorKind.USER, TENANT, "scenario owner")
WORKER = "sim-worker"
ASLEEP_FOR = timedelta(days=1)
_SECRET = b"simulation-secret-not-for-production"
_LEASE_MARGIN = timedelta(seconds=30)
_MAX_EVENTS = 200_000
"""A runaway guard: no 40-minute scenario comes near it."""
_SCHEDULE_ACTIONS = frozenset(
    {
        "apply_interval_hint",
        "schedule_one_shot_run",
        "pause_endpoint",
        "resume_endpoint",
        "clear_adaptive_hints",
    }
)
_ACTIONS: dict[str, AnyAction] = {**BY_NAME, **{a.name: a for a in PLANNER_ACTIONS}}


class _Waker:
    def wake(self) -> None:
        return None


@dataclass
class _Sim:
    scenario: Scenario
    mode: Mode
    clock: FrozenClock
    store: Store
    planner_store: MemoryPlannerStore
    services: Services
    targets: SimulatedTargets
    names: dict[str, str] = field(default_factory=dict)
    """Endpoint id → scenario name."""
    job_id: str = ""

    def owner(self) -> Context:
        return Context.for_caller(self.services, TENANT, OWNER, ALL_SCOPES)

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        return await invoke(_ACTIONS[action], self.owner(), payload)


def run_scenario(name: str, *, adaptive: bool, seed: int) -> SimulationResult:
    """Replay the bundled scenario ``name`` adaptively (rules planner) or on its
    static baselines; the same seed gives the same result."""
    mode = Mode.ADAPTIVE if adaptive else Mode.STATIC
    return asyncio.run(simulate(load_scenario(name), mode, seed))


async def simulate(
    scenario: Scenario, mode: Mode, seed: int, *, database: Path | None = None
) -> SimulationResult:
    """Replay ``scenario`` in ``mode``; see the module docstring. With ``database`` the
    scheduling state lives in a fresh SQLite file there instead of in memory."""
    with ids.random_bits_from(random.Random(seed).getrandbits):
        clock = FrozenClock(scenario.start)
        async with open_stores(TENANT, database) as stores:
            targets = SimulatedTargets(scenario, World(scenario, seed), clock)
            services = Services(
                stores.store, clock, _Waker(), targets, _SECRET, planner=stores.planner
            )
            sim = _Sim(scenario, mode, clock, stores.store, stores.planner, services, targets)
            await _set_up(sim)
            await _drive(sim, _planner(sim) if mode is Mode.ADAPTIVE else None)
            return await _collect(sim, seed)


def _planner(sim: _Sim) -> PlannerLoop:
    options = LoopOptions(debounce=timedelta(seconds=sim.scenario.debounce_seconds))
    rules = {PlannerKind.RULES: RulesPlanner()}
    return PlannerLoop(sim.services, sim.planner_store, rules, Budget(sim.planner_store), options)


async def _set_up(sim: _Sim) -> None:
    scenario, mode = sim.scenario, sim.mode
    job = await sim.call(
        "create_job", {"name": scenario.job_name, "description": scenario.job_description}
    )
    sim.job_id = job.id
    for spec in scenario.endpoints:
        out = await sim.call("add_endpoint", _endpoint_payload(sim, spec))
        sim.names[out.id] = spec.name
    ids_by_name = {name: id_ for id_, name in sim.names.items()}
    for spec in scenario.endpoints:
        endpoint_id = ids_by_name[spec.name]
        if spec.planner is not None and mode is Mode.ADAPTIVE:
            settings = {**spec.planner, "endpoint_id": endpoint_id, "reason": "scenario rules"}
            await sim.call("set_endpoint_planner", settings)
        if spec.asleep and mode is not Mode.STATIC_TIGHT:
            until = rfc3339(scenario.start + ASLEEP_FOR)
            reason = "Asleep until something needs it."
            await sim.call(
                "pause_or_resume_endpoint",
                {"endpoint_id": endpoint_id, "until": until, "reason": reason},
            )
    for shot in scenario.one_shots:
        payload = {
            "endpoint_id": ids_by_name[shot.endpoint],
            "run_at": rfc3339(scenario.at(shot.at_minute)),
            "reason": shot.reason,
        }
        await sim.call("schedule_one_shot_run", payload)


def _endpoint_payload(sim: _Sim, spec: EndpointSpec) -> dict[str, Any]:
    baseline = spec.baseline
    if sim.mode is Mode.STATIC_TIGHT:
        baseline = {"interval_seconds": spec.tight_interval_seconds}
    return {
        "job_id": sim.job_id,
        "name": spec.name,
        "description": spec.description,
        "tier": spec.tier,
        "request": {"method": spec.method, "url": f"https://{sim.scenario.host}{spec.path}"},
        "baseline": baseline,
        "min_interval_seconds": spec.min_interval_seconds,
        "max_interval_seconds": spec.max_interval_seconds,
        "reason": "scenario setup",
    }


async def _drive(sim: _Sim, planner: PlannerLoop | None) -> None:
    """Jump from event to event until the scenario ends; finish runs in flight."""
    end = sim.scenario.end
    running: list[tuple[datetime, int, Completion]] = []
    order = itertools.count()
    for _ in range(_MAX_EVENTS):
        nxt = await _next_event(sim, running, planner is not None)
        if nxt is None or nxt > end:
            break
        sim.clock.set(max(nxt, sim.clock.now()))
        now = sim.clock.now()
        await _finish(sim, running, now)
        for claim in await sim.store.claim_due(
            WORKER, now, lookahead=timedelta(0), limit=1000, lease_margin=_LEASE_MARGIN
        ):
            result = await sim.targets.dispatch(claim.endpoint, claim.scheduled_for)
            done = Completion(claim, run_from(claim, result, WORKER))
            heapq.heappush(running, (result.finished_at, next(order), done))
        if planner is not None:
            await planner.tick()
    else:
        raise RuntimeError(f"The simulation did not finish within {_MAX_EVENTS} events.")
    if running:
        sim.clock.set(max(max(t for t, _, _ in running), sim.clock.now()))
        await _finish(sim, running, sim.clock.now())


async def _next_event(
    sim: _Sim, running: list[tuple[datetime, int, Completion]], planning: bool
) -> datetime | None:
    times = [await sim.store.next_due_at()]
    if running:
        times.append(running[0][0])
    if planning:
        times.extend(w.due_at for w in sim.planner_store.watches.values())
    return min((t for t in times if t is not None), default=None)


async def _finish(
    sim: _Sim, running: list[tuple[datetime, int, Completion]], now: datetime
) -> None:
    batch: list[Completion] = []
    while running and running[0][0] <= now:
        batch.append(heapq.heappop(running)[2])
    if batch:
        await sim.store.complete(WORKER, batch, now)


async def _collect(sim: _Sim, seed: int) -> SimulationResult:
    runs, changes = await _read_back(sim)
    records = sorted((_record(sim, r) for r in runs), key=lambda r: (r.started_at, r.endpoint))
    changes.sort(key=lambda c: (c.at, c.endpoint, c.action))
    refused = sum(p.status.value == "refused" for p in sim.planner_store.proposals.values())
    return SimulationResult(
        scenario=sim.scenario,
        mode=sim.mode,
        seed=seed,
        runs=tuple(records),
        changes=tuple(changes),
        figures=figures(sim.scenario, records, changes, refused),
    )


async def _read_back(sim: _Sim) -> tuple[list[Run], list[ChangeRecord]]:
    """Every run of the job and every schedule change, as the store recorded them."""
    runs: list[Run] = []
    changes: list[ChangeRecord] = []
    async with sim.store.transaction(readonly=True) as tx:
        cursor: str | None = None
        while True:
            page = await tx.list_runs(
                TENANT, RunFilter(job_id=sim.job_id), cursor=cursor, limit=500
            )
            runs.extend(page.items)
            if (cursor := page.next_cursor) is None:
                break
        while True:
            events = await tx.list_audit(TENANT, AuditFilter(), cursor=cursor, limit=500)
            changes.extend(
                ChangeRecord(
                    e.at,
                    sim.names[e.target_id],
                    e.action,
                    e.actor.kind.value,
                    e.reason,
                    dict(e.changes),
                )
                for e in events.items
                if e.action in _SCHEDULE_ACTIONS and e.target_id in sim.names
            )
            if (cursor := events.next_cursor) is None:
                break
    return runs, changes


def _record(sim: _Sim, run: Run) -> RunRecord:
    name = sim.names[run.endpoint_id]
    body: dict[str, Any] = {}
    retry_after = None
    if run.response is not None:
        body = json.loads(run.response.body)
        asked = dict(run.response.headers).get("retry-after")
        retry_after = None if asked is None else timedelta(seconds=int(asked))
    return RunRecord(
        endpoint=name,
        tier=sim.scenario.endpoint(name).tier,
        scheduled_for=run.scheduled_for,
        started_at=run.started_at,
        finished_at=run.finished_at,
        ok=run.status.ok,
        http_status=run.http_status,
        source=run.source.value,
        body=body,
        retry_after=retry_after,
    )
