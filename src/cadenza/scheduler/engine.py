"""The worker loop: claim → start on time → dispatch → complete in batches.

``Scheduler.run`` drives five tasks until ``stop()``:

* the claim loop leases due endpoints ``lookahead`` ahead, in batches, then sleeps
  until the earliest unleased slot's turn (``_until_claimable``: as it enters the
  look-ahead window, in batches of about half a window; at most ``poll_interval``)
  or until the waker rings (an action changed a schedule, capacity came back, a
  notification arrived from another process). Completions release endpoints too:
  each flush reports the earliest slot it released, and the claim loop wakes for
  it if it meant to sleep past that slot's turn, so runs in hand cost no polling;
* the starter (``timer.Starter``) launches each claim at its slot, never early;
* each launched run takes a host slot and a global slot (``limiter.Limiter``), then
  the dispatcher performs it;
* the completer writes finished runs in one transaction per flush, a flush every
  ``flush_interval`` (50 ms) while runs finish, a few flushes in flight at once;
* the housekeeper renews leases, sweeps expired ones, beats the worker's heart and
  frees the leases of workers whose heart stopped. With other workers alive, a
  claim takes at most this worker's share of the work (``_fair_room``); on SQLite,
  where one worker process serves the file, the leases of the previous process are
  freed before the first claim (``_bury_predecessors``). Every attempt is
  recorded as started before its request leaves, the runs starting together in one
  write (``starts.StartMarks``). An ``overlap=allow`` endpoint's run then hands its
  lease to a flight of its own (``launches``), so the endpoint's next slot can be
  claimed while it is in flight.

Shutdown (``stop()``, or cancellation with no grace): stop claiming, release the
leases of claims that have not started, give running requests ``shutdown_grace``
seconds, record the ones still running as interrupted (status ``unknown``, not a
failure), flush, deregister.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import structlog

from cadenza.domain.catchup import skips
from cadenza.domain.lifecycle import replan
from cadenza.domain.model import Overlap, RunStatus
from cadenza.ports import (
    Claim,
    Clock,
    Completed,
    Completion,
    Dispatcher,
    DispatchResult,
    NullObserver,
    Observer,
    Store,
    WorkerInfo,
)
from cadenza.scheduler.completer import Completer
from cadenza.scheduler.housekeeping import Housekeeper
from cadenza.scheduler.launches import launch
from cadenza.scheduler.limiter import Limiter
from cadenza.scheduler.options import SchedulerOptions
from cadenza.scheduler.starts import StartMarks
from cadenza.scheduler.stats import Stats
from cadenza.scheduler.tickets import Stage, Ticket, failed_result, run_from, ticket_for
from cadenza.scheduler.timer import Starter
from cadenza.scheduler.waker import EventWaker, wait_or_sleep

log = structlog.get_logger("cadenza.scheduler")

INTERRUPTED = "Interrupted: the worker shut down before the request finished."
_BACKLOG_CAP = 100_000
"""The due backlog is counted up to this many endpoints (a bounded query)."""
RESCUE_AFTER = timedelta(milliseconds=50)
"""How late an unclaimed slot must be before a worker over its fair share takes it:
the workers below their share, whose turn it was, may be asleep (poll_interval)."""
_IDLE_FLOOR = 0.005
"""Shortest sleep after an empty claim, in case ``next_due_at`` names a row that
``claim_due`` will not take: never spin on the database."""


class Scheduler:
    """One worker: ``run()`` until ``stop()``. Runs start at their slot or later, never
    earlier. Each claimed slot ends as one of: a recorded run (interrupted ones too);
    a released lease (shutdown came before it started); nothing, when the lease was
    lost before it started (its new owner runs it); or, if the process dies, a lease
    that a sweeper frees (once the death is known, or when it expires) and records as
    a ``lost`` or ``unknown`` attempt."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        clock: Clock,
        waker: EventWaker,
        options: SchedulerOptions,
        observer: Observer | None = None,
    ) -> None:
        self._store = store
        self._observer = observer or NullObserver()
        self._dispatcher = dispatcher
        self._clock = clock
        self._waker = waker
        self._opts = options
        self._id = options.worker_id
        self._tickets: dict[tuple[str, int], Ticket] = {}
        self._ready = 0
        self._starved = False
        self._resting_until = 0.0
        self._look_again = math.inf
        self._alarm: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop = asyncio.Event()
        self._limiter = Limiter(options.max_concurrency, options.max_per_host)
        self._starter: Starter[Ticket] = Starter(clock, self._launch)
        self._completer = Completer(
            store,
            clock,
            self._id,
            interval=options.flush_interval,
            max_batch=options.flush_batch,
            on_flushed=self._flushed,
        )
        self._housekeeper = Housekeeper(
            store,
            clock,
            self._id,
            options.cadence(),
            tickets=self._tickets.values,
            on_lost=self._leases_lost,
            on_swept=self._swept,
            on_live=self._workers_alive,
        )
        self._starts = StartMarks(store, clock, self._id)
        self._live = 1
        self.stats = Stats()

    @property
    def worker_id(self) -> str:
        return self._id

    @property
    def last_heartbeat(self) -> float | None:
        """Monotonic time of the worker's last recorded heartbeat (``None``: none yet)."""
        return self._housekeeper.last_beat

    def stop(self) -> None:
        """Begin a graceful shutdown; ``run`` returns when it is done. Idempotent."""
        self._stop.set()
        self._waker.wake()

    async def run(self) -> None:
        """Work until ``stop()``; re-raises if a background task failed."""
        await self._register()
        loops = self._start_loops()
        stop_waiter = asyncio.ensure_future(self._stop.wait())
        grace = self._opts.shutdown_grace
        failure: BaseException | None = None
        try:
            await asyncio.wait((stop_waiter, *loops.values()), return_when=asyncio.FIRST_COMPLETED)
            failure = next((t.exception() for t in loops.values() if _failed(t)), None)
        except asyncio.CancelledError:
            grace = 0.0
            raise
        finally:
            stop_waiter.cancel()
            await self._shutdown(loops, grace)
        if failure is not None:
            log.error("scheduler.failed", error=f"{type(failure).__name__}: {failure}")
            raise failure

    def _start_loops(self) -> dict[str, asyncio.Task[None]]:
        return {
            "claim": asyncio.create_task(self._claim_loop(), name="cadenza-claim"),
            "start": asyncio.create_task(self._starter.run(), name="cadenza-start"),
            "complete": asyncio.create_task(self._completer.run(), name="cadenza-complete"),
            "housekeep": asyncio.create_task(self._housekeeper.run(), name="cadenza-housekeep"),
            "stats": asyncio.create_task(self._stats_loop(), name="cadenza-stats"),
        }

    async def _register(self) -> None:
        now = self._clock.now()
        opts = self._opts
        await self._store.register_worker(WorkerInfo(self._id, opts.hostname, opts.pid, now, now))
        if opts.sole_worker:
            await self._bury_predecessors()
        log.info(
            "worker.started",
            worker_id=self._id,
            batch=opts.claim_batch,
            lookahead_s=opts.lookahead,
            concurrency=opts.max_concurrency,
            per_host=opts.max_per_host,
        )

    async def _bury_predecessors(self) -> None:
        """This process alone serves the database (SQLite): every other worker in it is
        a previous process that died without shutting down. Its leases are freed
        now, not when they expire, and its row goes."""
        now = self._clock.now()
        try:
            runs = await self._store.free_leases_of(None, now, keep=self._id)
            for info in await self._store.list_workers():
                if info.id != self._id:
                    await self._store.remove_worker(info.id)
        except Exception as exc:  # their leases still expire; the sweeper frees them
            log.warning("workers.predecessors_failed", error=f"{type(exc).__name__}: {exc}")
            return
        if runs:
            log.warning("workers.predecessor_leases_freed", runs=len(runs))
            self.stats.swept += len(runs)

    # -- claiming ---------------------------------------------------------------

    async def _claim_loop(self) -> None:
        opts = self._opts
        while not self._stopping:
            room = self._room()
            if room <= 0:
                self._starved = True
                self._waker.clear()
                await self._rest(opts.poll_interval)
                continue
            # Cleared before reading, so a wake-up during the query is not lost.
            self._waker.clear()
            now = self._clock.now()
            fair = await self._fair_room(now, room)
            # Over its share, a worker only rescues slots already late that no other
            # worker took; it looks again when the next one would be.
            ahead = opts.lookahead_delta if fair > 0 else -RESCUE_AFTER
            room = fair if fair > 0 else room
            claims = await self._claim(now, room, ahead)
            if claims is None:
                await self._rest(opts.poll_interval)
                continue
            claims = await self._skip_missed(claims, now)
            self._accept(claims, now)
            if len(claims) < room:
                await self._rest(await self._idle_for(bool(claims), rescue=fair <= 0))

    def _room(self) -> int:
        """How many claims to ask for now; 0 while a bigger batch is worth waiting for.

        While runs are in flight, a claim for a handful of slots would cost a write
        transaction for little: wait until a quarter batch of room has come back.
        """
        opts = self._opts
        room = min(
            opts.ready_cap - self._ready, opts.claim_cap - len(self._tickets), opts.claim_batch
        )
        if self._ready and room < max(1, opts.claim_batch // 4):
            return 0
        return room

    def _workers_alive(self, count: int) -> None:
        self._live = max(1, count)

    async def _fair_room(self, now: datetime, room: int) -> int:
        """With other workers alive, claim no more than this worker's share of the
        work leased or due (rounded up), counting what it holds: otherwise the
        worker whose completions free slots claims them back first, and ends up
        holding everything (issue #17.7)."""
        if self._live <= 1:
            return room
        try:
            load = await self._store.due_load(now + self._opts.lookahead_delta)
        except Exception as exc:  # the claim itself will fail or succeed alike
            log.warning("claims.load_failed", error=f"{type(exc).__name__}: {exc}")
            return room
        held = len(self._tickets)
        # A worker holding nothing may always claim: an empty claim then sizes its
        # sleep until the next slot, as without others.
        return min(room, max(-(-load // self._live) - held, 0 if held else 1))

    async def _rest(self, seconds: float) -> None:
        """Sleep ``seconds``, less if a flush released a slot to claim sooner (since
        the last claim, or while asleep: ``_slot_released``), or until woken."""
        now = self._clock.monotonic()
        seconds = min(seconds, self._look_again - now)
        self._look_again = math.inf
        self._resting_until = now + seconds
        try:
            await self._waker.wait(self._clock, seconds)
        finally:
            self._resting_until = 0.0
            if self._alarm is not None:
                self._alarm.cancel()
                self._alarm = None

    def _slot_released(self, slot: datetime) -> None:
        """A flush released an endpoint whose next slot is ``slot`` (the earliest of
        its batch): see that the claim loop looks again in time to claim it."""
        delay = self._until_claimable(slot)
        at = self._clock.monotonic() + delay
        if not self._resting_until:
            # Claiming: the rest that follows may have read the slots before this
            # flush committed, so it must not sleep past this one's turn.
            self._look_again = min(self._look_again, at)
        elif at < self._resting_until:
            self._resting_until = at
            if self._alarm is not None:
                self._alarm.cancel()
            self._alarm = asyncio.create_task(self._wake_after(delay), name="cadenza-alarm")

    async def _wake_after(self, seconds: float) -> None:
        await self._clock.sleep(seconds)
        self._waker.wake()

    async def _claim(self, now: datetime, limit: int, ahead: timedelta) -> list[Claim] | None:
        try:
            return await self._store.claim_due(
                self._id,
                now,
                lookahead=ahead,
                limit=limit,
                lease_margin=self._opts.lease_margin_delta,
            )
        except Exception as exc:  # the database may come back: retry after a poll
            log.warning("claims.failed", error=f"{type(exc).__name__}: {exc}")
            return None

    async def _skip_missed(self, claims: list[Claim], now: datetime) -> list[Claim]:
        """Replan and release the stale slots that ``catch_up=skip`` says not to run;
        returns the claims to run. Stale slots only exist after downtime, so this
        costs one scan of the batch in normal operation."""
        missed = [c for c in claims if skips(c.endpoint, c.source, c.scheduled_for, now)]
        if not missed:
            return claims
        try:
            async with self._store.transaction() as tx:
                for claim in missed:
                    endpoint = await tx.get_endpoint(
                        claim.endpoint.tenant_id, claim.endpoint.id, for_update=True
                    )
                    job = await tx.get_job(endpoint.tenant_id, endpoint.job_id)
                    await tx.update_endpoint(replan(endpoint, job, now))
            await self._store.release(self._id, missed)
            log.info("claims.skipped_missed", slots=len(missed))
        except Exception as exc:  # the leases expire and the sweeper frees the slots
            log.warning("claims.skip_failed", error=f"{type(exc).__name__}: {exc}")
        skipped = {id(c) for c in missed}
        return [c for c in claims if id(c) not in skipped]

    def _accept(self, claims: list[Claim], now: datetime) -> None:
        if not claims:
            return
        margin = self._opts.lease_margin_delta
        tickets = [ticket_for(claim, now, margin) for claim in claims]
        due = now.timestamp()
        for ticket in tickets:
            self._tickets[ticket.key] = ticket
            if ticket.due <= due:
                # Already due: it counts against the ready cap before the starter gets
                # to it, or a backlog would be claimed whole in one go.
                self._count_ready(ticket)
        self._starter.add(tickets)
        self.stats.claimed += len(claims)
        self._observer.claimed(len(claims))
        log.debug("claims.taken", claims=len(claims), held=len(self._tickets))

    async def _idle_for(self, claimed: bool, *, rescue: bool = False) -> float:
        """Seconds until the earliest unleased slot enters the look-ahead window (to
        ``rescue``: until it is late by ``RESCUE_AFTER``)."""
        poll = self._opts.poll_interval
        try:
            nxt = await self._store.next_due_at()
        except Exception as exc:  # sleep one poll and try again
            log.warning("claims.next_due_failed", error=f"{type(exc).__name__}: {exc}")
            return poll
        if nxt is None:
            return poll
        if rescue:
            until = (nxt + RESCUE_AFTER - self._clock.now()).total_seconds()
        else:
            until = self._until_claimable(nxt)
        return min(poll, max(until, 0.0 if claimed else _IDLE_FLOOR))

    def _until_claimable(self, slot: datetime) -> float:
        """Seconds until the claim loop should claim ``slot`` (negative: now).

        Slots enter the look-ahead window one after another: claiming each as it
        enters cost a write transaction per run or two (~420 claims/s for 780 runs/s
        over 10k endpoints), and so did claiming at once a slot that entered the
        window while the last claim was under way (every ~5 ms, ~4 rows each). So a
        slot is claimed when it enters the window, but not sooner than half a window
        from now, nor, once inside, before only half the window is left before it:
        each claim takes about half a window's worth of slots, every one of them
        still at least half the window before it is due.
        """
        half = self._opts.lookahead / 2
        ahead = (slot - self._clock.now()).total_seconds()
        return max(ahead - 2 * half, min(half, ahead - half))

    # -- running ----------------------------------------------------------------

    def _launch(self, ticket: Ticket) -> None:
        ticket.stage = Stage.QUEUED
        self._count_ready(ticket)
        ticket.task = asyncio.create_task(self._execute(ticket))

    def _count_ready(self, ticket: Ticket) -> None:
        if not ticket.ready:
            ticket.ready = True
            self._ready += 1

    async def _execute(self, ticket: Ticket) -> None:
        claim = ticket.claim
        await self._limiter.acquire(ticket.host)
        try:
            if ticket.cancelled:
                self._forget(ticket)
                return
            ticket.stage = Stage.RUNNING
            if not await self._starts.may_send(claim):
                self._forget(ticket)
                return
            if claim.endpoint.overlap is Overlap.ALLOW:
                if not await launch(self._store, self._clock, self._id, claim):
                    self._forget(ticket)
                    return
                self._waker.wake()  # its next slot may be claimable already
            self.stats.started += 1
            result = await self._dispatch(claim)
        finally:
            self._limiter.release(ticket.host)
        self._record(ticket, result)

    async def _dispatch(self, claim: Claim) -> DispatchResult:
        started = self._clock.now()
        try:
            return await self._dispatcher.dispatch(claim.endpoint, claim.scheduled_for)
        except asyncio.CancelledError:
            # Whether the request reached the target is unknown: not a failure, so
            # the next interval does not back off.
            result = failed_result(started, self._clock.now(), INTERRUPTED, RunStatus.UNKNOWN)
            self._completer.add(Completion(claim, run_from(claim, result, self._id)))
            raise
        except Exception as exc:  # a dispatcher bug must not kill the worker
            log.exception("dispatch.crashed", endpoint_id=claim.endpoint.id)
            error = f"Dispatcher failed: {type(exc).__name__}: {exc}"
            return failed_result(started, self._clock.now(), error)

    def _record(self, ticket: Ticket, result: DispatchResult) -> None:
        claim = ticket.claim
        lateness = (result.started_at - claim.scheduled_for).total_seconds()
        duration = (result.finished_at - result.started_at).total_seconds()
        self._observer.run_finished(result.status, claim.source, lateness, duration)
        if lateness > self.stats.max_lateness:
            self.stats.max_lateness = lateness
        try:
            self._completer.add(Completion(claim, run_from(claim, result, self._id)))
        except Exception:  # a bug here must not leak the ticket; the lease then expires
            log.exception("run.record_failed", endpoint_id=claim.endpoint.id)
            self._forget(ticket)
            return
        self._finish(ticket)

    def _finish(self, ticket: Ticket) -> None:
        """The request ended: the ticket no longer counts as ready, but stays tracked
        (its lease renewed) until the completer has written it (``_flushed``)."""
        ticket.stage = Stage.FINISHED
        self._unready(ticket)
        self._wake_if_room()

    def _forget(self, ticket: Ticket) -> None:
        self._tickets.pop(ticket.key, None)
        self._unready(ticket)
        self._wake_if_room()

    def _unready(self, ticket: Ticket) -> None:
        if ticket.ready:
            ticket.ready = False
            self._ready -= 1

    def _wake_if_room(self) -> None:
        if self._starved and self._room() > 0:
            self._starved = False
            self._waker.wake()

    # -- callbacks from the completer and the housekeeper -----------------------

    def _flushed(self, batch: Sequence[Completion], done: Completed) -> None:
        self.stats.completed += len(batch)
        for completion in batch:
            ticket = self._tickets.pop((completion.claim.endpoint.id, completion.claim.epoch), None)
            if ticket is not None:
                self._unready(ticket)  # an interrupted run is still counted as ready
        self._wake_if_room()
        self.stats.fenced += len(done.lost)
        self._observer.leases_lost("fenced", len(done.lost))
        if done.earliest_next_run is not None:
            self._slot_released(done.earliest_next_run)

    def _leases_lost(self, endpoint_ids: list[str]) -> None:
        lost = set(endpoint_ids)
        dropped = 0
        for ticket in list(self._tickets.values()):
            if ticket.claim.endpoint.id in lost and ticket.stage is not Stage.RUNNING:
                ticket.cancelled = True
                dropped += 1
                if ticket.stage is Stage.WAITING:
                    self._forget(ticket)
        log.warning("leases.lost", endpoints=len(lost), dropped=dropped)

    def _swept(self, count: int) -> None:
        self.stats.swept += count
        self._observer.leases_lost("expired", count)
        self._waker.wake()

    # -- stopping ---------------------------------------------------------------

    async def _shutdown(self, loops: dict[str, asyncio.Task[None]], grace: float) -> None:
        # One grace period for everything: the running requests, then the writes
        # that fail (a database away); a write that succeeds is never cut short.
        deadline = self._clock.monotonic() + grace
        self._stopping = True
        self._waker.wake()
        await _settle((loops["claim"],), self._clock, self._opts.poll_interval)
        await _settle((loops["start"], loops["stats"]), self._clock, 0)
        unstarted = await self._take_unstarted()
        await self._release(unstarted)
        running = [t.task for t in self._tickets.values() if t.task is not None]
        if running:
            log.info("worker.draining", running=len(running), grace_s=grace)
            await _settle(running, self._clock, grace)
        await _settle((loops["housekeep"],), self._clock, 0)
        self._completer.close(within=max(0.0, deadline - self._clock.monotonic()))
        await _settle((loops["complete"],), self._clock, None)
        with contextlib.suppress(Exception):
            await self._store.remove_worker(self._id)
        log.info("worker.stopped", worker_id=self._id, **self.stats.fields())

    async def _take_unstarted(self) -> list[Ticket]:
        """Stop every claim that has not started its request; return the live ones."""
        waiting = [t for t in self._starter.drain() if not t.cancelled]
        queued = [t for t in self._tickets.values() if t.stage is Stage.QUEUED]
        tasks = [t.task for t in queued if t.task is not None]
        await _settle(tasks, self._clock, 0)
        queued = [t for t in queued if t.stage is Stage.QUEUED]
        for ticket in (*waiting, *queued):
            self._forget(ticket)
        return [*waiting, *(t for t in queued if not t.cancelled)]

    async def _release(self, tickets: list[Ticket]) -> None:
        if not tickets:
            return
        try:
            await self._store.release(self._id, [t.claim for t in tickets])
        except Exception as exc:  # the leases expire by themselves; the sweeper frees them
            log.warning("claims.release_failed", claims=len(tickets), error=str(exc))
            return
        self.stats.released += len(tickets)
        log.info("claims.released", claims=len(tickets))

    async def _stats_loop(self) -> None:
        # Debug, not info: an idle worker says nothing; metrics carry the figures.
        interval = self._opts.stats_interval
        while True:
            await self._clock.sleep(interval)
            await self._sample_backlog()
            log.debug("scheduler.stats", held=len(self._tickets), **self.stats.fields())
            self.stats.max_lateness = 0.0

    async def _sample_backlog(self) -> None:
        try:
            due = await self._store.count_due(self._clock.now(), cap=_BACKLOG_CAP)
        except Exception as exc:  # a sample missed; the next interval tries again
            log.debug("backlog.count_failed", error=f"{type(exc).__name__}: {exc}")
            return
        self._observer.due_backlog(due)


async def _settle(tasks: Iterable[asyncio.Task[None]], clock: Clock, grace: float | None) -> None:
    """Let ``tasks`` finish within ``grace`` seconds (None: wait), then cancel the rest."""
    pending = [t for t in tasks if not t.done()]
    if pending and grace != 0:
        gathered = asyncio.gather(*pending, return_exceptions=True)
        if grace is None:
            await gathered
        else:
            done = asyncio.Event()
            gathered.add_done_callback(lambda _: done.set())
            await wait_or_sleep(done, clock, grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None
