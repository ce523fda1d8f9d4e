"""One analysis of one endpoint, from its watch to its stored session.

``Analyst.analyse`` loads the endpoint, claims its watch (``triggers.claimed``),
builds the observation, runs the endpoint's planner under the analysis deadline,
charges the tokens and stores the session, whatever happens:

* the planner concludes: the session says what changed, proposed or was refused;
* the planner raises, or overruns its deadline: an ``error`` session;
* for the rules planner, such an analysis (not at a run) evaluates only the rules
  that look at a sibling (``sibling_rules``);
* the analysis is cancelled (the planner is stopping): a ``cancelled`` session;
  the cancellation then goes on.

``Analyst.evaluate_run`` is the rules planner's path: the endpoint's rules and
policies at one completed run, seeing the history that ends at that run, so the
loop can evaluate every run in order (rules are cheap; only the LLM is debounced).
It claims no watch and leaves its due time alone, and it stores a session only
when a rule or policy proposed something, so a quiet run costs no write.

Every session names the planner kind and model that ran, and lasts as long as the
analysis really did. What a failed analysis spent (``Sink.report_spent``) is charged
to the tenant's budget like a finished one's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cadenza.actions.base import Context, Services
from cadenza.domain import errors
from cadenza.domain.identity import Scope
from cadenza.domain.model import Actor, ActorKind, Endpoint, Job, Run
from cadenza.domain.planning import (
    MAX_LOOK_AGAIN,
    MIN_LOOK_AGAIN,
    EndpointPlanner,
    PlannerKind,
    PlannerSession,
    Policies,
    ProposalStatus,
    SessionOutcome,
    SiblingLatest,
    WatchState,
)
from cadenza.ids import new_id
from cadenza.planner import triggers
from cadenza.planner.apply import Applier
from cadenza.planner.budget import Budget
from cadenza.planner.port import Analysis, ModelUnavailable, Observation, Planner
from cadenza.ports import Clock, PlannerStore, RunFilter

PLANNER_SCOPES = frozenset({Scope.JOBS_READ, Scope.RUNS_READ, Scope.SCHEDULE_CONTROL})


def planner_actor(kind: PlannerKind) -> Actor:
    return Actor(ActorKind.PLANNER, f"planner-{kind.value}", f"{kind.value} planner")


@dataclass(frozen=True, slots=True)
class Reading:
    """How much an analysis reads, and how long it may take."""

    history: int
    sibling_history: int
    deadline: timedelta


@dataclass(frozen=True, slots=True)
class _Run:
    """One analysis under way: what its session will say."""

    watch: WatchState
    session_id: str
    planner: Planner
    started: datetime
    claimed_until: datetime | None
    """``None`` for an evaluation at one run, which claims no watch."""
    at: Run | None = None
    """The run an evaluation is made at; ``None``: the newest runs."""


class Analyst:
    """Runs analyses for the loop; see the module docstring."""

    def __init__(
        self,
        services: Services,
        store: PlannerStore,
        planners: dict[PlannerKind, Planner],
        budget: Budget,
        reading: Reading,
    ) -> None:
        self._services = services
        self._store = store
        self._planners = planners
        self._budget = budget
        self._reading = reading

    @property
    def _clock(self) -> Clock:
        return self._services.clock

    async def analyse(self, watch: WatchState) -> PlannerSession | None:
        """One analysis of the watched endpoint; ``None`` when there is nothing to
        analyse (gone, archived, planner off, or no rules and no policies)."""
        loaded = await self._load(watch)
        now = self._clock.now()
        if loaded is None:
            await self._store.put_watch(triggers.after_analysis(watch, None, now, fired=()))
            return None
        endpoint, job, config = loaded
        planner = self._planners.get(config.kind)
        if planner is None:
            error = f"No {config.kind.value} planner is configured on this server."
            blank = _session(new_id("pls", now), watch, config.kind, now, now)
            return await self._finish(watch, blank, SessionOutcome.ERROR, error=error)
        try:
            allowance = await self._allowance(planner, endpoint.tenant_id, now)
        except errors.BudgetExhausted as exc:
            blank = _session(new_id("pls", now), watch, planner.kind, now, now)
            return await self._finish(
                watch, blank, SessionOutcome.SKIPPED_BUDGET, error=exc.message
            )
        if config.kind is PlannerKind.RULES:
            config = sibling_rules(config)
        until = now + self._reading.deadline
        await self._store.put_watch(triggers.claimed(watch, until))
        running = _Run(watch, new_id("pls", now), planner, now, until)
        return await self._run(running, endpoint, job, config, allowance)

    async def evaluate_run(self, watch: WatchState, run: Run) -> PlannerSession | None:
        """The rules planner at ``run`` (module docstring); ``None`` when nothing was
        proposed, or the endpoint is not (or no longer) analysed by the rules."""
        loaded = await self._load(watch)
        planner = self._planners.get(PlannerKind.RULES)
        if loaded is None or loaded[2].kind is not PlannerKind.RULES or planner is None:
            return None
        endpoint, job, config = loaded
        now = self._clock.now()
        running = _Run(watch, new_id("pls", now), planner, now, None, at=run)
        return await self._run(running, endpoint, job, config, None)

    async def _run(
        self,
        running: _Run,
        endpoint: Endpoint,
        job: Job,
        config: EndpointPlanner,
        allowance: int | None,
    ) -> PlannerSession | None:
        kind = running.planner.kind
        ctx = Context.for_caller(
            self._services, endpoint.tenant_id, planner_actor(kind), PLANNER_SCOPES
        )
        obs = await self._observe(running, endpoint, job, config, allowance, ctx)
        applier = Applier(ctx, self._store, obs, running.session_id, config.approval)
        seconds = self._reading.deadline.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                analysis = await running.planner.analyse(obs, applier)
        except TimeoutError:
            why = f"The analysis did not finish within its deadline of {seconds:g} s."
            return await self._unfinished(running, applier, SessionOutcome.ERROR, why)
        except asyncio.CancelledError:
            why = "Cancelled: the planner was stopping."
            await self._unfinished(running, applier, SessionOutcome.CANCELLED, why)
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            return await self._unfinished(running, applier, SessionOutcome.ERROR, why, exc)
        await self._budget.charge(
            endpoint.tenant_id, running.started, analysis.input_tokens + analysis.output_tokens
        )
        return await self._record(running, analysis, applier)

    async def failed(self, watch: WatchState, exc: Exception) -> None:
        """Record an analysis that failed before its planner ran (a store error)."""
        now = self._clock.now()
        await self._store.put_watch(triggers.after_error(watch, now))
        session = replace(
            _session(new_id("pls", now), watch, PlannerKind.RULES, now, now),
            outcome=SessionOutcome.ERROR,
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        await self._store.insert_session(session)

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
        running: _Run,
        endpoint: Endpoint,
        job: Job,
        config: EndpointPlanner,
        allowance: int | None,
        ctx: Context,
    ) -> Observation:
        tenant, at = endpoint.tenant_id, running.at
        async with self._services.store.transaction(readonly=True) as tx:
            mine = await tx.list_runs(
                tenant,
                RunFilter(endpoint_id=endpoint.id),
                cursor=None if at is None else at.id,
                limit=self._reading.history - (at is not None),
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
                    limit=self._reading.sibling_history,
                )
                sibling_runs[sibling.id] = tuple(theirs.items)
        return Observation(
            now=self._clock.now(),
            endpoint=endpoint,
            job=job,
            config=config,
            trigger=running.watch.trigger,
            runs=tuple(mine.items) if at is None else (at, *mine.items),
            siblings=siblings,
            sibling_runs=sibling_runs,
            fired=dict(running.watch.fired),
            token_allowance=allowance,
            context=ctx,
        )

    async def _record(
        self, running: _Run, analysis: Analysis, applier: Applier
    ) -> PlannerSession | None:
        now = self._clock.now()
        if running.at is not None:
            return await self._record_evaluation(running, analysis, applier, now)
        look = analysis.look_again_at
        if look is not None:
            look = min(max(look, now + MIN_LOOK_AGAIN), now + MAX_LOOK_AGAIN)
        watch, kind = running.watch, running.planner.kind
        session = replace(
            _session(running.session_id, watch, kind, running.started, now),
            outcome=outcome_of(applier),
            summary=analysis.summary,
            model=analysis.model or running.planner.model_name,
            input_tokens=analysis.input_tokens,
            output_tokens=analysis.output_tokens,
            tool_calls=analysis.tool_calls,
            proposal_ids=tuple(p.id for p in applier.proposals),
            next_look_at=look,
        )
        await self._store.insert_session(session)
        current = await self._watch(watch)
        await self._store.put_watch(
            triggers.after_analysis(
                current, look, now, fired=analysis.fired, claimed_until=running.claimed_until
            )
        )
        return session

    async def _record_evaluation(
        self, running: _Run, analysis: Analysis, applier: Applier, now: datetime
    ) -> PlannerSession | None:
        """An evaluation at one run: the rules it fired start their cooldown, and a
        session is stored only when something was proposed."""
        current = await self._watch(running.watch)
        await self._store.put_watch(triggers.after_evaluation(current, now, analysis.fired))
        if not (analysis.fired or analysis.tool_calls):
            return None
        session = replace(
            _session(running.session_id, running.watch, running.planner.kind, running.started, now),
            outcome=outcome_of(applier),
            summary=analysis.summary,
            tool_calls=analysis.tool_calls,
            proposal_ids=tuple(p.id for p in applier.proposals),
        )
        await self._store.insert_session(session)
        return session

    async def _unfinished(
        self,
        running: _Run,
        applier: Applier,
        outcome: SessionOutcome,
        why: str,
        exc: Exception | None = None,
    ) -> PlannerSession:
        """Store the session of an analysis that failed or was cancelled."""
        now = self._clock.now()
        spent_in, spent_out, calls = applier.spent
        watch = running.watch
        session = replace(
            _session(running.session_id, watch, running.planner.kind, running.started, now),
            outcome=outcome,
            summary=why[:2000],
            error=why[:2000],
            model=running.planner.model_name,
            input_tokens=spent_in,
            output_tokens=spent_out,
            tool_calls=calls,
            proposal_ids=tuple(p.id for p in applier.proposals),
        )
        await self._budget.charge(watch.tenant_id, running.started, spent_in + spent_out)
        await self._store.insert_session(session)
        current = await self._watch(watch)
        if outcome is SessionOutcome.CANCELLED:
            await self._store.put_watch(triggers.after_cancel(current, now))
        else:
            later = exc.retry_after if isinstance(exc, ModelUnavailable) else None
            await self._store.put_watch(triggers.after_error(current, now, retry_after=later))
        return session

    async def _finish(
        self, watch: WatchState, session: PlannerSession, outcome: SessionOutcome, *, error: str
    ) -> PlannerSession:
        done = replace(session, outcome=outcome, error=error, summary=error)
        await self._store.insert_session(done)
        now = self._clock.now()
        await self._store.put_watch(triggers.after_analysis(watch, None, now, fired=()))
        return done

    async def _watch(self, watch: WatchState) -> WatchState:
        found = await self._store.get_watch(watch.endpoint_id)
        return found or watch


def sibling_rules(config: EndpointPlanner) -> EndpointPlanner:
    """The rules planner away from a run of its own (a sibling's news, a retry): its
    own runs were each evaluated already, so only rules that look at a sibling can
    have news to act on; the rest, and the policies, would re-judge a run twice."""
    looking = tuple(r for r in config.rules if any(isinstance(c, SiblingLatest) for c in r.when))
    return replace(config, rules=looking, policies=Policies())


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
