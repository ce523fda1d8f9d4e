"""Worker processes (``cadenza worker``) against PostgreSQL: a crash, and three
workers sharing one table.

Each test creates a fresh database on 127.0.0.1:5432 and drops it afterwards; it is
skipped only when no server answers there.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from scheduler_kit import (
    CLOCK,
    HANG_GUARD,
    TargetServer,
    bulk_seed,
    current,
    eventually,
    make_endpoint,
    make_job,
    postgres_database,
    runs_of,
    seed,
    spawn_worker,
    stop_worker,
    stop_workers,
    target_process,
    target_server,
    worker_settings,
)

from cadenza.adapters.wakeups import libpq_url
from cadenza.container import build_runtime
from cadenza.domain.model import RunStatus
from cadenza.ports import Store

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

SECOND = timedelta(seconds=1)
MILLISECOND = timedelta(milliseconds=1)
OTHERS_EVERY = 5 * SECOND


async def _workers_registered(store: Store, count: int) -> None:
    async def check() -> bool:
        return len(await store.list_workers()) >= count

    await eventually(check, every=0.1)


def _only_held_in_flight(
    database_url: str, held_id: str, target: TargetServer
) -> Callable[[], Awaitable[bool]]:
    """True when no endpoint but ``held_id`` is leased and every other request the
    target answered has its run recorded."""

    async def check() -> bool:
        async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
            cursor = await conn.execute(
                "SELECT (SELECT count(*) FROM endpoints WHERE lease_owner IS NOT NULL "
                "AND id != %(held)s), (SELECT count(*) FROM runs WHERE endpoint_id != %(held)s)",
                {"held": held_id},
            )
            row = await cursor.fetchone()
        answered = sum(hit.endpoint != held_id for hit in target.hits)
        return row is not None and row[0] == 0 and row[1] == answered

    return check


async def test_a_run_cut_by_a_killed_worker_is_recorded_and_run_again_by_another(
    tmp_path: Path,
) -> None:
    with postgres_database() as url:
        settings = worker_settings(url)
        # A 2 s timeout and a 1 s margin: the dead worker's lease ends 3 s after its claim.
        short = {"CADENZA_LEASE_MARGIN_SECONDS": "1", "CADENZA_LOOKAHEAD_SECONDS": "0.1"}
        async with target_server() as target, build_runtime(settings) as runtime:
            first = await spawn_worker(url, settings.secret_key, tmp_path, "crash-1", **short)
            try:
                await _workers_registered(runtime.store, 1)
                now = CLOCK.now()
                job = make_job(now)
                timeout = 2 * SECOND
                # Other endpoints run every five seconds within 0.2 s of each other;
                # the held slot falls well inside the quiet stretch between them, so
                # however slow the host, the kill cannot catch one of them in flight.
                others = [
                    make_endpoint(
                        job,
                        target.url("/ok"),
                        now,
                        every=OTHERS_EVERY,
                        start_at=now + SECOND + i * timedelta(milliseconds=10),
                        timeout=timeout,
                    )
                    for i in range(20)
                ]
                held = make_endpoint(
                    job,
                    target.url("/hold-first"),
                    now,
                    every=timedelta(minutes=1),
                    start_at=now + 2.5 * SECOND,
                    timeout=timeout,
                )
                await seed(runtime.store, job, [held, *others])
                await asyncio.wait_for(target.held.wait(), HANG_GUARD)
                # Kill when nothing but the held run is in flight or unrecorded.
                await eventually(_only_held_in_flight(url, held.id, target))
            finally:
                first.kill()
                await first.wait()
            second = await spawn_worker(url, settings.secret_key, tmp_path, "crash-2", **short)
            try:

                async def rerun_and_others_ran() -> bool:
                    if len(await runs_of(runtime.store, held.id)) < 2:
                        return False
                    runs = [r for e in others for r in await runs_of(runtime.store, e.id)]
                    return any(r.worker_id == "crash-2" for r in runs)

                await eventually(rerun_and_others_ran, every=0.2)
            finally:
                assert await stop_worker(second) == 0
            cut, retried = await runs_of(runtime.store, held.id)
            state = await current(runtime.store, held.id)
            other_runs = [r for e in others for r in await runs_of(runtime.store, e.id)]

    assert cut.status is RunStatus.UNKNOWN  # its start was recorded: sent, outcome unknown
    assert (cut.worker_id, cut.attempt) == ("crash-1", 1)
    assert retried.status is RunStatus.SUCCESS
    assert (retried.worker_id, retried.attempt) == ("crash-2", 2)
    assert retried.scheduled_for == cut.scheduled_for == held.next_run_at
    assert state.lease is None
    assert state.next_run_at == retried.scheduled_for + timedelta(minutes=1)
    requests = Counter(hit.key for hit in target.hits)
    assert requests[f"{held.id}:{cut.scheduled_for.isoformat()}"] == 2
    # Nothing else ran twice: no slot of another endpoint was lost or requested again.
    assert [r for r in other_runs if r.status is not RunStatus.SUCCESS] == []
    assert {r.worker_id for r in other_runs} == {"crash-1", "crash-2"}
    slots = [(r.endpoint_id, r.scheduled_for) for r in other_runs]
    assert len(slots) == len(set(slots))
    assert all(n == 1 for key, n in requests.items() if not key.startswith(held.id))


ENDPOINTS = 300
RUNS_EACH = 3


def _all_runs(database_url: str) -> dict[str, list[tuple[datetime, str, str]]]:
    """``(scheduled_for, status, worker_id)`` of every run, per endpoint, in slot order."""
    by_endpoint: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    with psycopg.connect(libpq_url(database_url)) as conn:
        cursor = conn.execute(
            "SELECT endpoint_id, scheduled_for, status, worker_id FROM runs "
            "ORDER BY endpoint_id, scheduled_for, attempt"
        )
        for endpoint_id, *row in cursor:
            by_endpoint[endpoint_id].append((row[0], row[1], row[2]))
    return by_endpoint


def _each_ran(database_url: str, times: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM (SELECT endpoint_id FROM runs GROUP BY endpoint_id "
                "HAVING count(*) >= %(times)s) AS done",
                {"times": times},
            )
            row = await cursor.fetchone()
        return row is not None and row[0] == ENDPOINTS

    return check


@pytest.mark.slow
async def test_three_workers_sharing_one_table_never_run_a_slot_twice(tmp_path: Path) -> None:
    """Correctness only: how many slots a fleet keeps up with is for ``bench/fleet.py``.
    A modest load, and the test waits for the work however long a busy host takes."""
    with postgres_database() as url, target_process() as target:
        settings = worker_settings(url)
        async with build_runtime(settings) as runtime:
            workers = [
                await spawn_worker(url, settings.secret_key, tmp_path, f"multi-{i}")
                for i in range(3)
            ]
            try:
                await _workers_registered(runtime.store, 3)
                now = CLOCK.now()
                job = make_job(now)
                endpoints = [
                    make_endpoint(
                        job, f"{target}/ok", now, start_at=now + SECOND + i * 3 * MILLISECOND
                    )
                    for i in range(ENDPOINTS)
                ]
                await bulk_seed(runtime, job, endpoints)
                await eventually(_each_ran(url, RUNS_EACH), every=0.2)
            finally:
                codes = await stop_workers(workers)
        runs = _all_runs(url)
    assert codes == [0, 0, 0]
    for endpoint in endpoints:
        assert endpoint.next_run_at is not None
        slots = [slot for slot, _, _ in runs[endpoint.id]]
        assert len(slots) == len(set(slots)), f"a slot of {endpoint.id} ran twice"
        # Late runs may stand for several slots, but every slot is on the lattice.
        assert all((slot - endpoint.next_run_at) % SECOND == timedelta(0) for slot in slots)
        assert {status for _, status, _ in runs[endpoint.id]} == {RunStatus.SUCCESS.value}
    assert {worker for rows in runs.values() for _, _, worker in rows} <= {
        "multi-0",
        "multi-1",
        "multi-2",
    }
