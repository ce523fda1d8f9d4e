"""A database outage of 10 s while runs finish: no result dropped, no request sent
again, the history complete (every request the target saw is one recorded run).

The faults are real. On PostgreSQL every connection of the worker goes through a
proxy on 127.0.0.1 that is cut for the outage (connections dropped, new ones
closed at once). On SQLite another connection holds the write lock for the outage,
with the busy timeout shortened to 0.2 s so that every write fails meanwhile, as on
a full disk, instead of waiting for the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from scheduler_kit import (
    CLOCK,
    TargetServer,
    eventually,
    make_endpoint,
    make_job,
    postgres_database,
    running_worker,
    runs_of,
    seed,
    sqlite_database,
    target_server,
    worker_settings,
)

from cadenza.adapters.store import sqlite
from cadenza.container import Runtime, build_runtime
from cadenza.domain.model import RunStatus
from cadenza.testing.faults import cut_proxy

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

OUTAGE_SECONDS = 10.0
ENDPOINTS = 4
Outage = tuple[Callable[[], None], Callable[[], None]]


@contextlib.asynccontextmanager
async def sqlite_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Outage]]:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
    url = sqlite_database(tmp_path)
    holder = sqlite3.connect(tmp_path / "cadenza.db", isolation_level=None)

    def begin() -> None:
        holder.execute("BEGIN IMMEDIATE")  # another process takes the write lock

    try:
        yield url, (begin, holder.rollback)
    finally:
        holder.close()


@contextlib.asynccontextmanager
async def postgres_outage() -> AsyncIterator[tuple[str, Outage]]:
    with postgres_database() as url:
        async with cut_proxy("127.0.0.1", 5432) as proxy:
            through = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
            yield through, (proxy.cut, proxy.restore)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def outage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Outage]]:
    faults = (
        sqlite_outage(tmp_path, monkeypatch) if request.param == "sqlite" else postgres_outage()
    )
    async with faults as made:
        yield made


async def test_runs_that_finish_during_an_outage_are_written_after_it(
    outage: tuple[str, Outage],
) -> None:
    url, (begin, end) = outage
    settings = worker_settings(url, shutdown_grace_seconds=5.0)
    async with target_server() as target, build_runtime(settings) as runtime:
        ids = await _seed(runtime, target)
        async with running_worker(settings, runtime):
            # Every endpoint's first request is under way when the database goes.
            await eventually(lambda: _held(target, len(ids)))
            begin()
            try:
                target.release.set()  # the requests answer 200 during the outage
                await asyncio.sleep(OUTAGE_SECONDS)
            finally:
                end()
            for endpoint_id in ids:
                await eventually(lambda e=endpoint_id: _runs_at_least(runtime, e, 2))
        await _assert_history(runtime, target, ids)


async def _seed(runtime: Runtime, target: TargetServer) -> list[str]:
    now = CLOCK.now()
    job = make_job(now)
    start = now + timedelta(seconds=0.5)
    endpoints = [
        make_endpoint(job, target.url("/hold"), now, every=timedelta(seconds=1), start_at=start)
        for _ in range(ENDPOINTS)
    ]
    await seed(runtime.store, job, endpoints)
    return [e.id for e in endpoints]


async def _held(target: TargetServer, count: int) -> bool:
    return len({h.endpoint for h in target.hits}) >= count


async def _runs_at_least(runtime: Runtime, endpoint_id: str, count: int) -> bool:
    return len(await runs_of(runtime.store, endpoint_id)) >= count


async def _assert_history(runtime: Runtime, target: TargetServer, ids: list[str]) -> None:
    sent = Counter(h.key for h in target.hits)
    assert [key for key, times in sent.items() if times > 1] == [], "a request was sent again"
    for endpoint_id in ids:
        runs = await runs_of(runtime.store, endpoint_id)
        assert [r for r in runs if r.status is RunStatus.LOST] == []
        assert all(r.attempt == 1 for r in runs), [(r.scheduled_for, r.attempt) for r in runs]
        first = runs[0]
        assert first.status is RunStatus.SUCCESS
        assert first.http_status == 200
        hits = [h for h in target.hits if h.endpoint == endpoint_id]
        # Every request the target saw is one recorded run, and nothing else is.
        assert len(hits) == len(runs), (len(hits), [r.status for r in runs])
