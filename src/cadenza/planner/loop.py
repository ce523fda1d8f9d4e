"""The planner worker loop: the body of ``cadenza planner`` (and of ``serve``).

Each tick does two things:

1. **ingest**: read the runs recorded since the last tick (all tenants, oldest
   first) and update each endpoint's watch (``cadenza.planner.triggers``): its own
   endpoint becomes due, and when a run is a change, so do the job's paused or idle
   siblings;
2. **analyse**: every watch that is due gets one analysis by the endpoint's planner
   (rules by default, the LLM when configured and set), bounded by the tenant's
   token budget, and the session is stored whatever happens.

Writes reach schedules only through the sink (``cadenza.planner.apply``), i.e. the
catalogue's actions with the planner as actor. An analysis that raises is recorded
as an ``error`` session and retried with backoff; nothing stops the loop, and the
scheduler never waits for the planner. One planner process per database is assumed
(two would analyse the same endpoints twice, harmlessly but wastefully).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from cadenza.actions.base import Context, Services
from cadenza.domain import errors
from cadenza.domain.identity import Scope
from cadenza.domain.model import Actor, ActorKind, Endpoint, Job, Run
from cadenza.domain.planning import (
    MAX_LOOK_AGAIN,
    MAX_RULE_WINDOW,
    MIN_LOOK_AGAIN,
    EndpointPlanner,
    PlannerKind,
    PlannerSession,
    Policies,
    ProposalStatus,
    SessionOutcome,
    WatchState,
)
from cadenza.ids import floor_id, new_id
from cadenza.planner import triggers
from cadenza.planner.apply import Applier
from cadenza.planner.budget import Budget
from cadenza.planner.port import Analysis, Observation, Planner
from cadenza.ports import Clock, PlannerStore, RunFilter

log = structlog.get_logger("cadenza.planner")

FEED_LAG = timedelta(seconds=5)
"""How far back each scan of new runs starts, for runs that committed late."""

PLANNER_SCOPES = frozenset({Scope.JOBS_READ, Scope.RUNS_READ, Scope.SCHEDULE_CONTROL})


def planner_actor(kind: PlannerKind) -> Actor:
    return Actor(ActorKind.PLANNER, f"planner-{kind.value}", f"{kind.value} planner")


@dataclass(frozen=True, slots=True)
class LoopOptions:
    debounce: timedelta = timedelta(seconds=30)
    idle_after: timedelta = timedelta(minutes=10)
    batch: int = 200
    history: int = 2 * MAX_RULE_WINDOW + 1
    sibling_history: int = 11
    poll_interval: float = 1.0
    start_lookback: timedelta = timedelta(0)
    """On start, runs finished this long ago are still ingested."""


class PlannerLoop:
    """See the module docstring. ``planners`` maps each kind to its planner; an
    endpoint set to a kind without a planner gets an ``error`` session."""

    def __init__(
        self,
        services: Services,
        store: PlannerStore,
        planners: Mapping[PlannerKind, Planner],
        budget: Budget,
        options: LoopOptions | None = None,
    ) -> None:
        self._services = services
        self._store = store
        self._planners = dict(planners)
        self._budget = budget
        self._options = options or LoopOptions()
        start = services.clock.now() - self._options.start_lookback
        self._rewind = floor_id("run", start)
        self._seen: dict[str, datetime] = {}

    @property
    def _clock(self) -> Clock:
        return self._services.clock

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and retried."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the loop must outlive any single failure
                log.error("planner.tick_failed", error=repr(exc))
            await self._clock.sleep(self._options.poll_interval)

    async def close(self) -> None:
        """Release what the planners hold (a model's HTTP client)."""
        for planner in self._planners.values():
            close = getattr(planner, "close", None)
            if close is not None:
                await close()

    async def tick(self) -> int:
        """Ingest new runs, then analyse what is due; returns the analyses made."""
        await self.ingest()
        return await self.analyse_due()

    async def ingest(self) -> int:
        """Observe every run not seen yet; returns how many there were.

        Run ids sort by finish time, but a run can commit a little after a later one
        (completions are batched). Each scan therefore starts ``FEED_LAG`` before the
        newest run seen, and ids already observed are skipped.
        """
        position, fresh = self._rewind, 0
        while True:
            runs = await self._store.runs_after(position, limit=self._options.batch)
            for run in runs:
                if run.id not in self._seen:
                    await self._observe_run(run)
                    self._seen[run.id] = run.finished_at
                    fresh += 1
            if len(runs) < self._options.batch:
                break
            position = runs[-1].id
        self._forget_before_lag()
        return fresh

    def _forget_before_lag(self) -> None:
        if not self._seen:
            return
        horizon = max(self._seen.values()) - FEED_LAG
        self._rewind = max(self._rewind, floor_id("run", horizon))
        self._seen = {k: v for k, v in self._seen.items() if k >= self._rewind}

    async def _observe_run(self, run: Run) -> None:
        now = self._clock.now()
        debounce = self._options.debounce
        async with self._services.store.transaction(readonly=True) as tx:
            before = await tx.list_runs(
                run.tenant_id, RunFilter(endpoint_id=run.endpoint_id), cursor=run.id, limit=1
            )
            previous = before.items[0] if before.items else None
            siblings: list[Endpoint] = []
            if triggers.is_change(run, previous):
                page = await tx.list_endpoints(
                    run.tenant_id, run.job_id, include_archived=False, cursor=None, limit=500
                )
                siblings = [e for e in page.items if e.id != run.endpoint_id]
        watch = await self._watch(run.tenant_id, run.endpoint_id, run.job_id)
        await self._store.put_watch(triggers.after_run(watch, run, previous, now, debounce))
        for sibling in siblings:
            if sibling.planner_enabled and triggers.is_idle(sibling, now, self._options.idle_after):
                theirs = await self._watch(sibling.tenant_id, sibling.id, sibling.job_id)
                await self._store.put_watch(triggers.after_sibling_change(theirs, now, debounce))

    async def _watch(self, tenant_id: str, endpoint_id: str, job_id: str) -> WatchState:
        found = await self._store.get_watch(endpoint_id)
        return found or WatchState(tenant_id, endpoint_id, job_id)

    async def analyse_due(self) -> int:
        due = await self._store.due_watches(self._clock.now(), limit=self._options.batch)
        count = 0
        for watch in due:
            try:
                session = await self.analyse(watch)
            except Exception as exc:  # recorded and retried; the loop goes on
                # No traceback: the session records the error, and rendering a model
                # client's frames is slow enough to stall the loop.
                log.error("planner.analysis_failed", endpoint_id=watch.endpoint_id, error=repr(exc))
                await self._failed(watch, exc)
                continue
            count += session is not None
        return count

    async def _failed(self, watch: WatchState, exc: Exception) -> None:
        now = self._clock.now()
        await self._store.put_watch(triggers.after_error(watch, now))
        session = replace(
            _session(new_id("pls", now), watch, PlannerKind.RULES, now, now),
            outcome=SessionOutcome.ERROR,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        await self._store.insert_session(session)

    async def analyse(self, watch: WatchState) -> PlannerSession | None:
        """One analysis of the watched endpoint; ``None`` when there is nothing to
        analyse (gone, archived, planner off, or no rules and no policies)."""
        loaded = await self._load(watch)
        if loaded is None:
            await self._store.put_watch(triggers.after_analysis(watch, None, self._now(), fired=()))
            return None
        endpoint, job, config = loaded
        started = self._now()
        session_id = new_id("pls", started)
        planner = self._planners.get(config.kind)
        if planner is None:
            return await self._finish(
                watch,
                _session(session_id, watch, config.kind, started, started),
                SessionOutcome.ERROR,
                error=f"No {config.kind.value} planner is configured on this server.",
            )
        try:
            allowance = await self._allowance(planner, endpoint.tenant_id, started)
        except errors.BudgetExhausted as exc:
            blank = _session(session_id, watch, planner.kind, started, started)
            return await self._finish(
                watch, blank, SessionOutcome.SKIPPED_BUDGET, error=exc.message
            )
        ctx = Context.for_caller(
            self._services, endpoint.tenant_id, planner_actor(planner.kind), PLANNER_SCOPES
        )
        obs = await self._observe(watch, endpoint, job, config, allowance, ctx)
        applier = Applier(ctx, self._store, obs, session_id, config.approval)
        analysis = await planner.analyse(obs, applier)
        await self._budget.charge(
            endpoint.tenant_id, started, analysis.input_tokens + analysis.output_tokens
        )
        return await self._record(watch, session_id, planner.kind, started, analysis, applier)

    def _now(self) -> datetime:
        return self._clock.now()

    async def _load(self, watch: WatchState) -> tuple[Endpoint, Job, EndpointPlanner] | None:
        try:
            async with self._services.store.transaction(readonly=True) as tx:
                endpoint = await tx.get_endpoint(watch.tenant_id, watch.endpoint_id)
                job = await tx.get_job(watch.tenant_id, endpoint.job_id)
        except errors.NotFound:
            return None
        if endpoint.archived or job.archived:
            return None
        if not (endpoint.planner_enabled and job.planner_enabled):
            return None
        config = await self._store.get_planner(watch.tenant_id, watch.endpoint_id)
        idle = config.kind is PlannerKind.RULES and not config.rules
        if idle and config.policies == Policies():
            return None
        return endpoint, job, config

    async def _allowance(self, planner: Planner, tenant_id: str, now: datetime) -> int | None:
        if planner.kind is PlannerKind.RULES:
            return None
        return await self._budget.require(tenant_id, now)

    async def _observe(
        self,
        watch: WatchState,
        endpoint: Endpoint,
        job: Job,
        config: EndpointPlanner,
        allowance: int | None,
        ctx: Context,
    ) -> Observation:
        opts = self._options
        tenant = endpoint.tenant_id
        async with self._services.store.transaction(readonly=True) as tx:
            mine = await tx.list_runs(
                tenant, RunFilter(endpoint_id=endpoint.id), cursor=None, limit=opts.history
            )
            page = await tx.list_endpoints(
                tenant, job.id, include_archived=False, cursor=None, limit=500
            )
            siblings = tuple(e for e in page.items if e.id != endpoint.id)
            sibling_runs: dict[str, tuple[Run, ...]] = {}
            for sibling in siblings:
                theirs = await tx.list_runs(
                    tenant,
                    RunFilter(endpoint_id=sibling.id),
                    cursor=None,
                    limit=opts.sibling_history,
                )
                sibling_runs[sibling.id] = tuple(theirs.items)
        return Observation(
            now=self._now(),
            endpoint=endpoint,
            job=job,
            config=config,
            trigger=watch.trigger,
            runs=tuple(mine.items),
            siblings=siblings,
            sibling_runs=sibling_runs,
            fired=dict(watch.fired),
            token_allowance=allowance,
            context=ctx,
        )

    async def _record(
        self,
        watch: WatchState,
        session_id: str,
        kind: PlannerKind,
        started: datetime,
        analysis: Analysis,
        applier: Applier,
    ) -> PlannerSession:
        now = self._now()
        look = analysis.look_again_at
        if look is not None:
            look = min(max(look, now + MIN_LOOK_AGAIN), now + MAX_LOOK_AGAIN)
        session = replace(
            _session(session_id, watch, kind, started, now),
            outcome=outcome_of(applier),
            summary=analysis.summary,
            model=analysis.model,
            input_tokens=analysis.input_tokens,
            output_tokens=analysis.output_tokens,
            tool_calls=analysis.tool_calls,
            proposal_ids=tuple(p.id for p in applier.proposals),
            next_look_at=look,
        )
        await self._store.insert_session(session)
        current = await self._watch(watch.tenant_id, watch.endpoint_id, watch.job_id)
        await self._store.put_watch(
            triggers.after_analysis(current, look, now, fired=analysis.fired)
        )
        return session

    async def _finish(
        self, watch: WatchState, session: PlannerSession, outcome: SessionOutcome, *, error: str
    ) -> PlannerSession:
        done = replace(session, outcome=outcome, error=error, summary=error)
        await self._store.insert_session(done)
        now = self._now()
        await self._store.put_watch(triggers.after_analysis(watch, None, now, fired=()))
        return done


def outcome_of(applier: Applier) -> SessionOutcome:
    statuses = {p.status for p in applier.proposals}
    if ProposalStatus.APPLIED in statuses:
        return SessionOutcome.CHANGED
    if ProposalStatus.PENDING in statuses:
        return SessionOutcome.PROPOSED
    if ProposalStatus.REFUSED in statuses:
        return SessionOutcome.REFUSED
    return SessionOutcome.NO_CHANGE


def _session(
    session_id: str, watch: WatchState, kind: PlannerKind, started: datetime, done: datetime
) -> PlannerSession:
    return PlannerSession(
        id=session_id,
        tenant_id=watch.tenant_id,
        endpoint_id=watch.endpoint_id,
        job_id=watch.job_id,
        planner=kind,
        trigger=watch.trigger,
        started_at=started,
        finished_at=done,
        outcome=SessionOutcome.NO_CHANGE,
    )
