"""Worker processes (``cadenza worker``) against PostgreSQL: a crash, and three
workers sharing one table.

Each test creates a fresh database on 127.0.0.1:5432 and drops it afterwards; it is
skipped only when no server answers there.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from scheduler_kit import (
    CLOCK,
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


async def _workers_registered(store: Store, count: int) -> None:
    async def check() -> bool:
        return len(await store.list_workers()) >= count

    await eventually(check, within=30, every=0.1)


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


async def test_a_run_lost_with_a_killed_worker_is_recorded_and_run_again_by_another(
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
                # Other endpoints run every second in the first fifth of each second;
                # the held slot falls half-way between them.
                others = [
                    make_endpoint(
                        job,
                        target.url("/ok"),
                        now,
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
                await asyncio.wait_for(target.held.wait(), 30)
                # Kill when nothing but the held run is in flight or unrecorded.
                await eventually(_only_held_in_flight(url, held.id, target), within=10)
            finally:
                first.kill()
                await first.wait()
            second = await spawn_worker(url, settings.secret_key, tmp_path, "crash-2", **short)
            try:

                async def rerun() -> bool:
                    return len(await runs_of(runtime.store, held.id)) >= 2

                await eventually(rerun, within=20, every=0.1)
                await asyncio.sleep(1.0)
            finally:
                assert await stop_worker(second) == 0
            lost, retried = await runs_of(runtime.store, held.id)
            state = await current(runtime.store, held.id)
            other_runs = [r for e in others for r in await runs_of(runtime.store, e.id)]

    assert lost.status is RunStatus.LOST
    assert (lost.worker_id, lost.attempt) == ("crash-1", 1)
    assert retried.status is RunStatus.SUCCESS
    assert (retried.worker_id, retried.attempt) == ("crash-2", 2)
    assert retried.scheduled_for == lost.scheduled_for == held.next_run_at
    assert state.lease is None
    assert state.next_run_at == retried.scheduled_for + timedelta(minutes=1)
    requests = Counter(hit.key for hit in target.hits)
    assert requests[f"{held.id}:{lost.scheduled_for.isoformat()}"] == 2
    # Nothing else ran twice: no slot of another endpoint was lost or requested again.
    assert [r for r in other_runs if r.status is not RunStatus.SUCCESS] == []
    assert {r.worker_id for r in other_runs} == {"crash-1", "crash-2"}
    slots = [(r.endpoint_id, r.scheduled_for) for r in other_runs]
    assert len(slots) == len(set(slots))
    assert all(n == 1 for key, n in requests.items() if not key.startswith(held.id))


ENDPOINTS = 2000
WINDOW = timedelta(seconds=20)


@dataclass(frozen=True)
class Row:
    endpoint_id: str
    scheduled_for: datetime
    status: str
    missed_slots: int
    worker_id: str


def _all_runs(database_url: str) -> dict[str, list[Row]]:
    """Every run, per endpoint, in slot order (one query instead of 2,000)."""
    by_endpoint: dict[str, list[Row]] = defaultdict(list)
    with psycopg.connect(libpq_url(database_url)) as conn:
        cursor = conn.execute(
            "SELECT endpoint_id, scheduled_for, status, missed_slots, worker_id FROM runs "
            "ORDER BY endpoint_id, scheduled_for, attempt"
        )
        for row in cursor:
            by_endpoint[row[0]].append(Row(*row))
    return by_endpoint


class SlotsMissed(AssertionError):
    """The fleet fell behind: slots merged or ran late, but none ran twice."""


@pytest.mark.slow
@pytest.mark.xfail(
    reason=(
        "Open work (scheduler engine issue): on a loaded 2-core host three workers have "
        "managed about 1,800 of the 2,000 runs/s needed, so late runs merge slots (on a "
        "quiet one it passes). Duplicates stay at zero and are asserted strictly; only "
        "missed slots may fail here."
    ),
    raises=SlotsMissed,
    strict=False,
)
async def test_three_workers_run_every_slot_of_two_thousand_endpoints_exactly_once(
    tmp_path: Path,
) -> None:
    with postgres_database() as url, target_process() as target:
        settings = worker_settings(url)
        async with build_runtime(settings) as runtime:
            workers = [
                await spawn_worker(
                    url, settings.secret_key, tmp_path, f"multi-{i}", CADENZA_MAX_PER_HOST="512"
                )
                for i in range(3)
            ]
            try:
                await _workers_registered(runtime.store, 3)
                now = CLOCK.now()
                job = make_job(now)
                # Phases spread over the second so the load is even; the lead covers seeding.
                first_slot = now + 6 * SECOND
                endpoints = [
                    make_endpoint(
                        job, f"{target}/ok", now, start_at=first_slot + i % 1000 * MILLISECOND
                    )
                    for i in range(ENDPOINTS)
                ]
                await bulk_seed(runtime, job, endpoints)
                assert CLOCK.now() < first_slot - SECOND, "seeding took too long"
                await asyncio.sleep((first_slot + WINDOW - CLOCK.now()).total_seconds())
                stopped_at = CLOCK.now()
            finally:
                codes = await stop_workers(workers)
        runs = _all_runs(url)
    assert codes == [0, 0, 0]
    duplicates = missed = failed = off_lattice = 0
    for endpoint in endpoints:
        assert endpoint.next_run_at is not None
        rows = runs[endpoint.id]
        slots = [r.scheduled_for for r in rows]
        duplicates += len(slots) - len(set(slots))
        expected = (stopped_at - SECOND - endpoint.next_run_at) // SECOND + 1
        wanted = {endpoint.next_run_at + k * SECOND for k in range(expected)}
        missed += len(wanted - set(slots)) + sum(r.missed_slots for r in rows)
        failed += sum(r.status != RunStatus.SUCCESS.value for r in rows)
        off_lattice += sum(b - a != SECOND for a, b in itertools.pairwise(slots))
    assert (duplicates, failed) == (0, 0)
    if missed or off_lattice:
        raise SlotsMissed(f"{missed} slots missed, {off_lattice} runs off the lattice")
    assert sum(len(rows) for rows in runs.values()) >= ENDPOINTS * (WINDOW // SECOND - 1)
    assert {r.worker_id for rows in runs.values() for r in rows} == {
        "multi-0",
        "multi-1",
        "multi-2",
    }
