"""kill -9 of a worker with overlapping runs in flight, on SQLite and PostgreSQL:
every cut flight is recorded ``unknown`` on its own; an ``at_least_once`` endpoint
sends each cut slot again exactly once with the same ``Idempotency-Key``, an
``at_most_once`` one never sends a slot twice; both go on running.

Two ``overlap=allow`` endpoints, ``max_in_flight`` = ``BOUND``, one slot a second.
The loopback target holds the first ``BOUND`` requests of each (``/hold-first/3``)
and answers later ones, and its own log is what is asserted. The requests' timeout
is 300 s, so a flight cannot simply expire within the hang guard: a re-send can
only come from the death being detected (a restart on SQLite, another worker's
heartbeat watch on PostgreSQL). Every wait is on that log, with a hang guard.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from scheduler_kit import (
    CLOCK,
    HANG_GUARD,
    TargetServer,
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
from cadenza.domain.model import Delivery, Endpoint, Overlap, RunStatus
from cadenza.ports import Store

pytestmark = pytest.mark.anyio

BOUND = 3
TIMEOUT = timedelta(seconds=300)
"""Far longer than the hang guard: a flight cannot simply expire during a test."""
FAST = {"CADENZA_HEARTBEAT_SECONDS": "1"}
JOB = make_job(CLOCK.now())


def _endpoints(target: TargetServer) -> tuple[Endpoint, Endpoint]:
    now = CLOCK.now()
    least, most = (
        make_endpoint(
            JOB,
            target.url(f"/hold-first/{BOUND}"),
            now,
            every=timedelta(seconds=1),
            start_at=now + timedelta(seconds=1),
            timeout=TIMEOUT,
            delivery=delivery,
            overlap=Overlap.ALLOW,
            max_in_flight=BOUND,
        )
        for delivery in (Delivery.AT_LEAST_ONCE, Delivery.AT_MOST_ONCE)
    )
    return least, most


def _keys(target: TargetServer, endpoint: Endpoint) -> list[str]:
    return [h.key for h in target.hits if h.endpoint == endpoint.id]


async def _all_in_flight(target: TargetServer, endpoints: tuple[Endpoint, ...]) -> None:
    async def check() -> bool:
        return all(len(_keys(target, e)) >= BOUND for e in endpoints)

    await eventually(check, every=0.05)


async def _recovered(target: TargetServer, least: Endpoint, most: Endpoint) -> None:
    """at_least_once: each cut slot sent again, then a new one; at_most_once: new
    slots sent after the cut ones."""
    cut_least = set(_keys(target, least)[:BOUND])

    async def check() -> bool:
        sent = Counter(_keys(target, least))
        again = all(sent[k] >= 2 for k in cut_least)
        on_least = len(sent) > BOUND
        on_most = len(set(_keys(target, most))) > BOUND + 1
        return again and on_least and on_most

    await eventually(check, every=0.05)


async def _check(store: Store, target: TargetServer, least: Endpoint, most: Endpoint) -> None:
    sent = Counter(_keys(target, least))
    cut = _keys(target, least)[:BOUND]
    assert len(set(cut)) == BOUND
    assert [sent[k] for k in cut] == [2] * BOUND  # each cut slot sent again, once
    assert all(n == 1 for k, n in sent.items() if k not in cut), sent
    assert set(Counter(_keys(target, most)).values()) == {1}  # never a slot twice
    for endpoint, again in ((least, True), (most, False)):
        runs = await runs_of(store, endpoint.id)
        cut_runs = [r for r in runs if r.status is RunStatus.UNKNOWN]
        assert len(cut_runs) == BOUND, [(r.scheduled_for, r.attempt, r.status) for r in runs]
        for first in cut_runs:
            assert (first.attempt, first.worker_id) == (1, "cut")
            retried = [r for r in runs if r.scheduled_for == first.scheduled_for and r.attempt == 2]
            assert [r.status for r in retried] == ([RunStatus.SUCCESS] if again else [])
        assert any(r.status is RunStatus.SUCCESS and r.attempt == 1 for r in runs)


async def test_sqlite_a_restart_settles_every_cut_flight(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    settings = worker_settings(url)
    async with target_server() as target, build_runtime(settings) as runtime:
        least, most = _endpoints(target)
        await seed(runtime.store, JOB, [least, most])
        cut = await spawn_worker(url, settings.secret_key, tmp_path, "cut", **FAST)
        try:
            await _all_in_flight(target, (least, most))
        finally:
            cut.kill()
            await cut.wait()
        restarted = await spawn_worker(url, settings.secret_key, tmp_path, "again", **FAST)
        try:
            await _recovered(target, least, most)
        finally:
            assert await stop_worker(restarted) == 0
        await _check(runtime.store, target, least, most)


@pytest.mark.postgres
async def test_postgres_another_worker_settles_every_cut_flight(tmp_path: Path) -> None:
    with postgres_database() as url:
        settings = worker_settings(url)
        async with target_server() as target, build_runtime(settings) as runtime:
            least, most = _endpoints(target)
            await seed(runtime.store, JOB, [least, most])
            cut = await spawn_worker(url, settings.secret_key, tmp_path, "cut", **FAST)
            survivor = None
            try:
                await _all_in_flight(target, (least, most))
                survivor = await spawn_worker(url, settings.secret_key, tmp_path, "peer", **FAST)

                async def both_registered() -> bool:
                    return len(await runtime.store.list_workers()) == 2

                await eventually(both_registered, every=0.1)
                # The survivor judges others only once its own beats have gone
                # through for a while (``housekeeping``); not a speed assumption.
                await asyncio.sleep(3)
            finally:
                cut.kill()
                await cut.wait()
            try:
                await _recovered(target, least, most)
            finally:
                assert survivor is not None
                assert await stop_worker(survivor) == 0
            await _check(runtime.store, target, least, most)
            assert TIMEOUT.total_seconds() > HANG_GUARD
