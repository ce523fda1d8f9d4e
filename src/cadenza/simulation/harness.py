"""The harness: Cadenza's real worker and planner on a virtual clock.

Setup goes through the catalogue as a person would (``create_job``,
``add_endpoint``, ``set_endpoint_planner``, ``pause_or_resume_endpoint``,
``schedule_one_shot_run``). Then the processes of ``cadenza serve`` run until the
scenario ends, on a ``VirtualTimeLoop``:

* the scheduler (``scheduler.Scheduler``, with its claim loop, starter, completer and
  housekeeper) claims due endpoints, starts each run at its slot and dispatches it to
  the simulated targets (``world.SimulatedTargets``), whose requests take their
  scripted latency in virtual time; completions go to the store in batches, and the
  store asks the governor for each endpoint's next slot;
* the planner loop (``planner.service.run_planner``) reads the recorded runs and
  writes hints through the catalogue's actions, which wake the scheduler.

At the end the worker shuts down as on SIGTERM: claims not started are released,
requests in flight finish and are recorded. No real time passes and nothing touches
the network. Ids draw their random bits from ``random.Random(seed)``, so a seed
replays byte for byte.

Every replay is also a test of the engine: a warning or error that the worker or the
planner logs, or a request without a recorded run, fails it with ``ReplayFailed``.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from cadenza import ids
from cadenza.actions import BY_NAME, AnyAction, Context, Services, invoke
from cadenza.actions.planner import ACTIONS as PLANNER_ACTIONS
from cadenza.actions.wire import rfc3339
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import Actor, ActorKind, Run
from cadenza.domain.planning import ProposalStatus
from cadenza.planner.service import PlannerConfig, run_planner
from cadenza.ports import AuditFilter, PlannerStore, RunFilter, Store
from cadenza.scheduler import EventWaker, Scheduler, SchedulerOptions
from cadenza.simulation.result import ChangeRecord, Mode, RunRecord, SimulationResult, figures
from cadenza.simulation.scenario import EndpointSpec, Scenario, load_scenario
from cadenza.simulation.stores import open_stores
from cadenza.simulation.virtual_time import VirtualClock, VirtualTimeLoop
from cadenza.simulation.world import SimulatedTargets, World

TENANT = "usr_simulation"
OWNER = Actor(ActorKind.USER, TENANT, "scenario owner")
WORKER = "sim-worker"
ASLEEP_FOR = timedelta(days=1)
_SECRET = b"simulation-secret-not-for-production"
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
_QUIET_LEVELS = frozenset({"debug", "info"})


class ReplayFailed(RuntimeError):
    """The worker or the planner misbehaved during a replay (see the module docstring)."""


@dataclass
class _Sim:
    scenario: Scenario
    mode: Mode
    store: Store
    planner_store: PlannerStore
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
    return simulate(load_scenario(name), mode, seed)


def simulate(
    scenario: Scenario, mode: Mode, seed: int, *, database: Path | None = None
) -> SimulationResult:
    """Replay ``scenario`` in ``mode`` on a virtual clock of its own (so not from inside
    a running event loop); see the module docstring. With ``database`` the scheduling
    state lives in a fresh SQLite file there instead of in memory."""
    with (
        ids.random_bits_from(random.Random(seed).getrandbits),
        _warnings_kept() as warnings,
        asyncio.Runner(loop_factory=VirtualTimeLoop) as runner,
    ):
        return runner.run(_replay(scenario, mode, seed, database, warnings))


async def _replay(
    scenario: Scenario,
    mode: Mode,
    seed: int,
    database: Path | None,
    warnings: list[MutableMapping[str, Any]],
) -> SimulationResult:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    clock = VirtualClock(scenario.start, loop)
    async with open_stores(TENANT, database) as stores:
        loop.hold_while(stores.busy)
        waker = EventWaker()
        targets = SimulatedTargets(scenario, World(scenario, seed), clock)
        services = Services(stores.store, clock, waker, targets, _SECRET, planner=stores.planner)
        sim = _Sim(scenario, mode, stores.store, stores.planner, services, targets)
        await _set_up(sim)
        await _run_until_end(sim, loop, clock, waker)
        if warnings:
            shown = "; ".join(str(w) for w in warnings[:3])
            raise ReplayFailed(f"The replay logged {len(warnings)} warning(s) or error(s): {shown}")
        return await _collect(sim, seed)


@contextmanager
def _warnings_kept() -> Iterator[list[MutableMapping[str, Any]]]:
    """Silence structlog while a replay runs (its worker would log every claim), but
    keep warnings and errors for ``simulate`` to report.

    The configured processor list is changed in place, as ``structlog.testing``
    does, because loggers already bound hold on to that list.
    """
    kept: list[MutableMapping[str, Any]] = []

    def keep(_logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        if method not in _QUIET_LEVELS:
            kept.append({"level": method, **event})
        raise structlog.DropEvent

    processors = structlog.get_config()["processors"]
    saved = list(processors)
    processors[:] = [keep]
    try:
        yield kept
    finally:
        processors[:] = saved


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


async def _run_until_end(
    sim: _Sim, loop: VirtualTimeLoop, clock: VirtualClock, waker: EventWaker
) -> None:
    """Run the worker (and, adaptively, the planner) until the scenario ends: every
    slot up to and including the end runs; then both stop as on SIGTERM."""
    options = SchedulerOptions(worker_id=WORKER, hostname="simulation", poll_interval=3600.0)
    scheduler = Scheduler(sim.store, sim.targets, clock, waker, options)
    stop = asyncio.Event()
    processes = [asyncio.create_task(scheduler.run(), name="sim-worker")]
    if sim.mode is Mode.ADAPTIVE:
        config = PlannerConfig(debounce_seconds=sim.scenario.debounce_seconds)
        planner = run_planner(sim.services, sim.planner_store, config, stop)
        processes.append(asyncio.create_task(planner, name="sim-planner"))
    try:
        await clock.sleep_until(sim.scenario.end)
        await loop.settled()
    finally:
        stop.set()
        scheduler.stop()
        done = await asyncio.gather(*processes, return_exceptions=True)
    failed = [outcome for outcome in done if isinstance(outcome, BaseException)]
    if failed:
        raise ReplayFailed(f"A process of the replay failed: {failed[0]!r}") from failed[0]


async def _collect(sim: _Sim, seed: int) -> SimulationResult:
    runs, changes = await _read_back(sim)
    records = sorted((_record(sim, r) for r in runs), key=lambda r: (r.started_at, r.endpoint))
    changes.sort(key=lambda c: (c.at, c.endpoint, c.action))
    if len(records) != sim.targets.calls:
        raise ReplayFailed(
            f"{sim.targets.calls} requests were made but {len(records)} runs were recorded."
        )
    refused = await _count_refused(sim.planner_store)
    return SimulationResult(
        scenario=sim.scenario,
        mode=sim.mode,
        seed=seed,
        runs=tuple(records),
        changes=tuple(changes),
        figures=figures(sim.scenario, records, changes, refused),
    )


async def _count_refused(store: PlannerStore) -> int:
    count, cursor = 0, None
    while True:
        page = await store.list_proposals(
            TENANT, status=ProposalStatus.REFUSED, endpoint_id=None, cursor=cursor, limit=500
        )
        count += len(page.items)
        if (cursor := page.next_cursor) is None:
            return count


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
