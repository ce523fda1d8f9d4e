"""A worker killed with -9, then downtime, then a new worker: every ``run_once``
endpoint runs exactly one catch-up run carrying the missed slots, then returns to its
original lattice, and every slot is accounted for exactly once (issue #16.1, #17.5).
On SQLite and on PostgreSQL.

Nothing here depends on the host's speed: a run that starts late (a loaded machine)
stands for the last slot due before it started and counts the others as missed, so
the accounting identity holds however late any run is.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from scheduler_kit import (
    CLOCK,
    eventually,
    make_endpoint,
    make_job,
    postgres_database,
    runs_of,
    seed,
    spawn_worker,
    sqlite_database,
    stop_worker,
    target_server,
    worker_settings,
)

from cadenza.container import build_runtime
from cadenza.domain.model import Endpoint, Run, RunStatus
from cadenza.ports import Store

pytestmark = pytest.mark.anyio

EVERY = timedelta(seconds=2)
ENDPOINTS = 4
DOWNTIME = 4 * EVERY
SHORT_LEASES = {"CADENZA_LEASE_MARGIN_SECONDS": "1", "CADENZA_LOOKAHEAD_SECONDS": "0.1"}


@contextlib.contextmanager
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield sqlite_database(tmp_path)


def pg_url(_: Path) -> AbstractContextManager[str]:
    return postgres_database()


@pytest.mark.slow
@pytest.mark.parametrize("database", [sqlite_url, pg_url], ids=["sqlite", "postgres"])
async def test_one_catch_up_run_per_endpoint_after_a_killed_worker(
    tmp_path: Path, database: Callable[[Path], AbstractContextManager[str]]
) -> None:
    with database(tmp_path) as url:
        settings = worker_settings(url)
        async with target_server() as target, build_runtime(settings) as runtime:
            now = CLOCK.now()
            job = make_job(now)
            endpoints = [
                make_endpoint(
                    job,
                    target.url("/ok"),
                    now,
                    every=EVERY,
                    start_at=now + timedelta(seconds=1),
                    timeout=timedelta(seconds=1),
                )
                for _ in range(ENDPOINTS)
            ]
            await seed(runtime.store, job, endpoints)

            async def each_ran(times: int, since: datetime) -> bool:
                for endpoint in endpoints:
                    runs = await _finished(runtime.store, endpoint.id)
                    if sum(r.started_at >= since for r in runs) < times:
                        return False
                return True

            first = await spawn_worker(url, settings.secret_key, tmp_path, "k-1", **SHORT_LEASES)
            try:
                await eventually(lambda: each_ran(2, now), every=0.2)
            finally:
                first.kill()
                await first.wait()
            killed_at = CLOCK.now()
            await asyncio.sleep(DOWNTIME.total_seconds())  # the downtime itself
            restarted_at = CLOCK.now()
            second = await spawn_worker(url, settings.secret_key, tmp_path, "k-2", **SHORT_LEASES)
            try:
                await eventually(lambda: each_ran(3, restarted_at), every=0.2)
            finally:
                assert await stop_worker(second) == 0
            for endpoint in endpoints:
                _assert_one_catch_up(
                    endpoint, await _finished(runtime.store, endpoint.id), killed_at, restarted_at
                )


async def _finished(store: Store, endpoint_id: str) -> list[Run]:
    """Runs that finished, oldest slot first; a lost attempt is not a run of its slot."""
    runs = await runs_of(store, endpoint_id)
    return [r for r in runs if r.status is RunStatus.SUCCESS]


def _assert_one_catch_up(
    endpoint: Endpoint, runs: list[Run], killed_at: datetime, restarted_at: datetime
) -> None:
    origin = endpoint.next_run_at
    assert origin is not None

    def standing(run: Run) -> int:
        """The lattice slot (its index) the run stands for: the last due at its start."""
        return (max(run.started_at, run.scheduled_for) - origin) // EVERY

    # No slot runs twice, and every slot is either run or counted missed, never both.
    assert len({r.scheduled_for for r in runs}) == len(runs)
    for before, after in itertools.pairwise(runs):
        assert standing(after) - standing(before) == after.missed_slots + 1, (before, after)
    # Exactly one run catches up the downtime; the ones after it keep the lattice.
    catch_ups = [r for r in runs if r.scheduled_for < restarted_at <= r.started_at]
    assert len(catch_ups) == 1, runs
    assert catch_ups[0].missed_slots >= 1
    later = [r for r in runs if r.scheduled_for >= restarted_at]
    assert len(later) >= 2
    assert all((r.scheduled_for - origin) % EVERY == timedelta(0) for r in later)
    assert all(r.started_at < killed_at or r.started_at >= restarted_at for r in runs)
