"""The planner worker loop: the body of ``cadenza planner`` (and of ``serve``).

The loop repeats two steps until it is told to stop:

1. **ingest**: read the runs recorded since the last pass (all tenants, oldest
   first). An endpoint analysed by the rules planner has its rules evaluated at each
   run, in order, none skipped and none twice (rules are cheap, and a signal carried
   by one run must not be lost to a debounce); an LLM endpoint's watch
   (``cadenza.planner.triggers``) becomes due, debounced, since its analyses cost
   money. When a run is a change, the job's paused or idle siblings become due too;
2. **start**: every watch that is due gets one analysis (``cadenza.planner.analysis``)
   by the endpoint's planner, rules by default, the LLM when configured and set.

Analyses of different endpoints run side by side, at most ``concurrency`` at once,
each under its deadline, so one slow model call delays nobody else. An endpoint has
at most one analysis running and at most one waiting (its watch), however many runs
arrive meanwhile. The loop does not wait for analyses: it goes on ingesting and
starting others as slots free up.

Stopping is prompt at every step: the pass under way is abandoned at once (however
long the backlog it was ingesting), no new analysis starts, and the analyses under
way are cancelled; each is recorded as a ``cancelled``
session. ``run`` returns when they are recorded, well within a process's grace
period.

Writes reach schedules only through the sink (``cadenza.planner.apply``), i.e. the
catalogue's actions with the planner as actor. Nothing stops the loop, and the
scheduler never waits for the planner. One planner process per database is assumed
(two would analyse the same endpoints twice, harmlessly but wastefully).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from cadenza.actions.base import Services
from cadenza.domain.model import Endpoint, Run
from cadenza.domain.planning import (
    MAX_RULE_WINDOW,
    PlannerKind,
    PlannerSession,
    Trigger,
    WatchState,
)
from cadenza.ids import floor_id
from cadenza.planner import triggers
from cadenza.planner.analysis import Analyst, Reading
from cadenza.planner.budget import Budget
from cadenza.planner.port import Planner
from cadenza.ports import Clock, PlannerStore, RunFilter

log = structlog.get_logger("cadenza.planner")

FEED_LAG = timedelta(seconds=5)
"""How far back each scan of new runs starts, for runs that committed late."""
CANCEL_WAIT_SECONDS = 5.0
"""How long ``run`` waits, once it has cancelled them, for analyses to record
themselves; a guard against a store that hangs, far below any grace period."""


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
    concurrency: int = 8
    """Analyses running at once, across endpoints."""
    deadline: timedelta = timedelta(minutes=3)
    """The longest one analysis may take, model calls and retries included."""


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
        self._options = options or LoopOptions()
        reading = Reading(
            self._options.history, self._options.sibling_history, self._options.deadline
        )
        self._analyst = Analyst(services, store, self._planners, budget, reading)
        start = services.clock.now() - self._options.start_lookback
        self._rewind = floor_id("run", start)
        self._seen: dict[str, datetime] = {}
        self._running: dict[str, asyncio.Task[PlannerSession | None]] = {}
        self._freed = asyncio.Event()
        self._stopping = False

    @property
    def _clock(self) -> Clock:
        return self._services.clock

    @property
    def running(self) -> frozenset[str]:
        """The endpoints whose analysis is under way."""
        return frozenset(self._running)

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest and start analyses until ``stop`` is set, then cancel what runs."""
        try:
            while not stop.is_set():
                await self._pass_unless_stopped(stop)
                await self._pause(stop)
        finally:
            self._stopping = True
            cancelled = await self.cancel_running()
            log.info("planner.stopped", cancelled=cancelled)

    async def _pass_unless_stopped(self, stop: asyncio.Event) -> None:
        """One pass (ingest, then start what is due), abandoned the moment ``stop``
        is set: one pass may have a backlog of many thousand runs to ingest, each
        with writes, and a stop must not wait for it. An abandoned pass loses
        nothing: a run is marked seen only once observed, and a write cut short
        rolls back."""
        work = asyncio.ensure_future(self._pass(stop))
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((work, halt), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, halt):
                task.cancel()
            await asyncio.gather(work, halt, return_exceptions=True)

    async def _pass(self, stop: asyncio.Event) -> None:
        try:
            await self.ingest(stop)
            if not stop.is_set():
                await self.start_due()
        except Exception as exc:  # the loop must outlive any single failure
            log.error("planner.tick_failed", error=repr(exc))

    async def _pause(self, stop: asyncio.Event) -> None:
        """Wait for the next pass: the poll interval, a freed slot or ``stop``."""
        if stop.is_set():
            return
        self._freed.clear()
        waits = [
            asyncio.ensure_future(self._clock.sleep(self._options.poll_interval)),
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._freed.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def close(self) -> None:
        """Release what the planners hold (a model's HTTP client)."""
        for planner in self._planners.values():
            close = getattr(planner, "close", None)
            if close is not None:
                await close()

    async def tick(self) -> int:
        """Ingest new runs, then analyse everything due now and wait for it; returns
        the analyses made. For callers that step time themselves (tests, replays)."""
        await self.ingest()
        made, analysed = 0, set[str]()
        while await self.start_due(exclude=analysed) or self._running:
            analysed |= self.running
            made += await self.drain()
        return made

    async def ingest(self, stop: asyncio.Event | None = None) -> int:
        """Observe every run not seen yet; returns how many there were.

        Run ids sort by finish time, but a run can commit a little after a later one
        (completions are batched). Each scan therefore starts ``FEED_LAG`` before the
        newest run seen, and ids already observed are skipped.
        """
        position, fresh = self._rewind, 0
        while stop is None or not stop.is_set():
            runs = await self._store.runs_after(position, limit=self._options.batch)
            for run in runs:
                if stop is not None and stop.is_set():
                    break
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
        config = await self._store.get_planner(run.tenant_id, run.endpoint_id)
        if config.kind is PlannerKind.RULES:
            await self._evaluate_at(watch, run, previous)
        else:
            await self._store.put_watch(triggers.after_run(watch, run, previous, now, debounce))
        for sibling in siblings:
            if sibling.planner_enabled and triggers.is_idle(sibling, now, self._options.idle_after):
                theirs = await self._watch(sibling.tenant_id, sibling.id, sibling.job_id)
                await self._store.put_watch(triggers.after_sibling_change(theirs, now, debounce))

    async def _evaluate_at(self, watch: WatchState, run: Run, previous: Run | None) -> None:
        """The rules at ``run``, after any analysis of the endpoint under way (one at
        a time per endpoint; waiting does not cancel it if this pass is abandoned)."""
        under_way = self._running.get(run.endpoint_id)
        if under_way is not None:
            await asyncio.wait((under_way,))
            watch = await self._watch(watch.tenant_id, watch.endpoint_id, watch.job_id)
        kind = Trigger.FAILURE if triggers.is_new_failure(run, previous) else Trigger.NEW_RUNS
        session = await self._analyst.evaluate_run(replace(watch, trigger=kind), run)
        if session is not None:
            self._services.observer.planner_analysis(session)

    async def _watch(self, tenant_id: str, endpoint_id: str, job_id: str) -> WatchState:
        found = await self._store.get_watch(endpoint_id)
        return found or WatchState(tenant_id, endpoint_id, job_id)

    async def start_due(self, exclude: frozenset[str] | set[str] = frozenset()) -> int:
        """Start an analysis for each due watch without one (and not in ``exclude``),
        while slots are free; returns how many started."""
        free = self._options.concurrency - len(self._running)
        if free <= 0 or self._stopping:
            return 0
        limit = min(self._options.batch, free + len(self._running))
        due = await self._store.due_watches(self._clock.now(), limit=limit)
        started = 0
        for watch in due:
            if started >= free or self._stopping:
                break
            if watch.endpoint_id in self._running:
                continue  # its one waiting analysis starts when this one ends
            if watch.endpoint_id in exclude:
                continue
            task = asyncio.create_task(self._analyse(watch), name=f"analyse {watch.endpoint_id}")
            self._running[watch.endpoint_id] = task
            task.add_done_callback(functools.partial(self._done, watch.endpoint_id))
            started += 1
        return started

    def _done(self, endpoint_id: str, _task: object) -> None:
        self._running.pop(endpoint_id, None)
        self._freed.set()

    async def _analyse(self, watch: WatchState) -> PlannerSession | None:
        try:
            session = await self._analyst.analyse(watch)
        except Exception as exc:  # recorded and retried; the loop goes on
            # No traceback: the session records the error, and rendering a model
            # client's frames is slow enough to stall the loop.
            log.error("planner.analysis_failed", endpoint_id=watch.endpoint_id, error=repr(exc))
            await self._record_failure(watch, exc)
            return None
        if session is not None:
            self._services.observer.planner_analysis(session)
        return session

    async def _record_failure(self, watch: WatchState, exc: Exception) -> None:
        try:
            await self._analyst.failed(watch, exc)
        except Exception as again:  # the store is down: the watch is retried as it stands
            log.error(
                "planner.failure_unrecorded", endpoint_id=watch.endpoint_id, error=repr(again)
            )

    async def drain(self) -> int:
        """Wait for the analyses under way; returns how many made a session."""
        tasks = list(self._running.values())
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return sum(1 for r in results if isinstance(r, PlannerSession))

    async def cancel_running(self) -> int:
        """Cancel the analyses under way and wait (bounded) until each has recorded
        its ``cancelled`` session; returns how many there were."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT_SECONDS):
                    await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)
