"""The worker loop in-process on SQLite, against a loopback HTTP server.

Schedule changes are written the way the actions write them: ``domain.lifecycle``
inside a store transaction, then ``waker.wake()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from scheduler_kit import (
    CLOCK,
    HANG_GUARD,
    TENANT,
    current,
    eventually,
    make_endpoint,
    make_job,
    running_worker,
    runs_of,
    seed,
    spawn_worker,
    sqlite_database,
    stop_worker,
    target_server,
    worker_settings,
)

from cadenza.container import Runtime, build_runtime
from cadenza.domain import lifecycle
from cadenza.domain.model import IntervalHint, PlanSource, RunStatus
from cadenza.scheduler.engine import INTERRUPTED

pytestmark = pytest.mark.anyio

EARLY_LIMIT = timedelta(milliseconds=2)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


async def _hint(runtime: Runtime, endpoint_id: str, every: timedelta) -> None:
    """Write an interval hint as the ``set_interval_hint`` action does."""
    async with runtime.store.transaction() as tx:
        endpoint = await tx.get_endpoint(TENANT, endpoint_id, for_update=True)
        job = await tx.get_job(TENANT, endpoint.job_id)
        now = CLOCK.now()
        hint = IntervalHint(every, expires_at=now + timedelta(hours=1), reason="test")
        await tx.update_endpoint(lifecycle.with_interval_hint(endpoint, job, hint, now))
    runtime.waker.wake()


def _count_at_least(
    runtime: Runtime, endpoint_id: str, count: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(await runs_of(runtime.store, endpoint_id)) >= count

    return check


async def test_runs_are_recorded_with_the_fields_of_their_claim(tmp_path: Path) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        start = now + timedelta(seconds=0.5)
        # Hourly: however late a slow host starts the run, it stands for one slot.
        endpoints = [
            make_endpoint(job, target.url("/ok"), now, every=HOUR, start_at=start) for _ in range(3)
        ]
        await seed(runtime.store, job, endpoints)
        async with running_worker(settings, runtime) as worker:
            for endpoint in endpoints:
                await eventually(_count_at_least(runtime, endpoint.id, 1))
        for endpoint in endpoints:
            (run,) = await runs_of(runtime.store, endpoint.id)
            assert run.scheduled_for == start
            assert run.status is RunStatus.SUCCESS
            assert run.http_status == 200
            assert run.source is PlanSource.BASELINE_INTERVAL
            assert (run.attempt, run.missed_slots) == (1, 0)
            assert run.worker_id == worker.scheduler.worker_id
            assert run.started_at >= run.scheduled_for - EARLY_LIMIT
            assert run.finished_at >= run.started_at
            assert run.response is not None
            assert run.response.body == b"ok"
            state = await current(runtime.store, endpoint.id)
            assert state.lease is None
            assert state.last_scheduled_for == run.scheduled_for
            assert state.next_run_at == run.scheduled_for + HOUR


async def test_a_hint_written_while_a_run_is_in_flight_shapes_the_plan_written_at_completion(
    tmp_path: Path,
) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        endpoint = make_endpoint(
            job, target.url("/hold"), now, every=timedelta(minutes=1), start_at=now + SECOND / 2
        )
        await seed(runtime.store, job, [endpoint])
        async with running_worker(settings, runtime):
            await asyncio.wait_for(target.held.wait(), HANG_GUARD)
            await _hint(runtime, endpoint.id, timedelta(seconds=5))
            target.release.set()
            await eventually(_count_at_least(runtime, endpoint.id, 1))
            (run,) = await runs_of(runtime.store, endpoint.id)
            state = await current(runtime.store, endpoint.id)
        assert run.status is RunStatus.SUCCESS
        assert state.next_run_source is PlanSource.HINT_INTERVAL
        assert state.next_run_at == run.started_at + timedelta(seconds=5)


async def test_a_tightening_between_runs_moves_the_next_run_earlier_at_once(
    tmp_path: Path,
) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        endpoint = make_endpoint(
            job, target.url("/ok"), now, every=timedelta(minutes=1), start_at=now + SECOND / 2
        )
        await seed(runtime.store, job, [endpoint])
        # An hour-long poll: only the waker can make the worker notice the change; were
        # it missed, the second run would start about a minute late, at the old slot.
        async with running_worker(settings, runtime, poll_interval=3600.0):
            await eventually(_count_at_least(runtime, endpoint.id, 1))
            (first,) = await runs_of(runtime.store, endpoint.id)
            before = await current(runtime.store, endpoint.id)
            await _hint(runtime, endpoint.id, SECOND)
            after = await current(runtime.store, endpoint.id)
            await eventually(_count_at_least(runtime, endpoint.id, 2))
            second = (await runs_of(runtime.store, endpoint.id))[1]
        assert before.next_run_at == first.scheduled_for + timedelta(minutes=1)
        assert after.next_run_source is PlanSource.HINT_INTERVAL
        assert after.next_run_at is not None
        assert before.next_run_at is not None
        assert first.started_at + SECOND <= after.next_run_at < before.next_run_at
        assert second.scheduled_for == after.next_run_at
        assert second.source is PlanSource.HINT_INTERVAL
        assert second.started_at - second.scheduled_for < 30 * SECOND


async def test_graceful_shutdown_releases_claims_that_have_not_started(tmp_path: Path) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        start = now + timedelta(minutes=1)
        endpoint = make_endpoint(job, target.url("/ok"), now, start_at=start)
        await seed(runtime.store, job, [endpoint])
        # A look-ahead of twice the wait: the slot is claimed at once, and shutdown comes
        # long before it is due.
        async with running_worker(settings, runtime, lookahead=120.0) as worker:

            async def claimed() -> bool:
                return worker.scheduler.stats.claimed >= 1

            await eventually(claimed)
        state = await current(runtime.store, endpoint.id)
        assert worker.scheduler.stats.released == 1
        assert state.lease is None
        assert state.next_run_at == start
        assert await runs_of(runtime.store, endpoint.id) == []
        assert target.hits == []


async def test_graceful_shutdown_lets_a_running_request_finish_within_the_grace_period(
    tmp_path: Path,
) -> None:
    settings = worker_settings(sqlite_database(tmp_path), shutdown_grace_seconds=HANG_GUARD)
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        endpoint = make_endpoint(
            job, target.url("/hold"), now, every=timedelta(minutes=1), start_at=now + SECOND / 2
        )
        await seed(runtime.store, job, [endpoint])
        async with running_worker(settings, runtime) as worker:
            await asyncio.wait_for(target.held.wait(), HANG_GUARD)
            worker.stop()
            await asyncio.sleep(0.3)
            target.release.set()
        (run,) = await runs_of(runtime.store, endpoint.id)
        state = await current(runtime.store, endpoint.id)
        assert run.status is RunStatus.SUCCESS
        assert state.lease is None
        assert state.next_run_at == run.scheduled_for + timedelta(minutes=1)


async def test_a_request_cut_short_by_shutdown_is_recorded_as_unknown_not_as_a_failure(
    tmp_path: Path,
) -> None:
    settings = worker_settings(sqlite_database(tmp_path), shutdown_grace_seconds=0.3)
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        endpoint = make_endpoint(
            job, target.url("/hold"), now, every=timedelta(minutes=1), start_at=now + SECOND / 2
        )
        await seed(runtime.store, job, [endpoint])
        async with running_worker(settings, runtime):
            await asyncio.wait_for(target.held.wait(), HANG_GUARD)
        (run,) = await runs_of(runtime.store, endpoint.id)
        state = await current(runtime.store, endpoint.id)
        assert run.status is RunStatus.UNKNOWN
        assert run.error == INTERRUPTED
        assert state.lease is None
        # No backoff: the next slot is the baseline's, one interval on.
        assert state.failure_count == 0
        assert state.next_run_at == run.scheduled_for + timedelta(minutes=1)


async def test_runs_never_start_more_than_two_milliseconds_early(tmp_path: Path) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        # Slots spread over a second at odd sub-millisecond offsets.
        endpoints = [
            make_endpoint(
                job, target.url("/ok"), now, start_at=now + timedelta(seconds=0.6 + i * 0.02371)
            )
            for i in range(40)
        ]
        await seed(runtime.store, job, endpoints)
        async with running_worker(settings, runtime):
            for endpoint in endpoints:
                await eventually(_count_at_least(runtime, endpoint.id, 2))
        arrivals = {}
        for hit in target.hits:
            arrivals.setdefault(hit.endpoint, []).append(hit.at)
        checked = 0
        for endpoint in endpoints:
            runs = await runs_of(runtime.store, endpoint.id)
            for run, arrived in zip(runs, sorted(arrivals[endpoint.id]), strict=False):
                assert run.started_at >= run.scheduled_for - EARLY_LIMIT
                assert arrived >= run.scheduled_for - EARLY_LIMIT
                checked += 1
        assert checked >= 80


async def test_the_worker_command_runs_due_endpoints_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    url = sqlite_database(tmp_path)
    settings = worker_settings(url)
    async with target_server() as target, build_runtime(settings) as runtime:
        worker = await spawn_worker(url, settings.secret_key, tmp_path, "cli-worker")
        try:

            async def registered() -> bool:
                return len(await runtime.store.list_workers()) == 1

            await eventually(registered, every=0.1)
            now = CLOCK.now()
            job = make_job(now)
            endpoint = make_endpoint(job, target.url("/ok"), now, start_at=now + SECOND / 2)
            await seed(runtime.store, job, [endpoint])
            await eventually(_count_at_least(runtime, endpoint.id, 2))
        finally:
            code = await stop_worker(worker)
        runs = await runs_of(runtime.store, endpoint.id)
        workers = await runtime.store.list_workers()
    assert code == 0
    assert {r.worker_id for r in runs} == {"cli-worker"}
    assert all(r.status is RunStatus.SUCCESS for r in runs)
    assert workers == []
    log = (tmp_path / "cli-worker.log").read_text()
    assert '"event": "worker.stopped"' in log
