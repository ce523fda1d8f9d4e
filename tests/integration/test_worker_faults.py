"""kill -9 of the worker holding leases, on SQLite and on PostgreSQL (issue #17,
items 1, 3 and 9): its endpoints run again as soon as the death is known, long before
their leases would have expired. Every cut request's start was recorded, so its run
is ``unknown`` (not ``lost``): ``at_least_once`` endpoints send it again with the
same ``Idempotency-Key``, ``at_most_once`` ones never send a slot twice.

Every request is held by the loopback target until the kill (``/hold-first``), with a
300 s timeout: a lease lasts that plus its margin, so a re-run seen within the hang
guard (60 s) can only come from the death being detected. The dead worker's row
is pruned (after 3 s here). The workers heartbeat
every second here, so the waits stay short; the recovery time is printed, never
asserted against the clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
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
from cadenza.domain.model import Delivery, Endpoint, RunStatus
from cadenza.ports import Store

pytestmark = pytest.mark.anyio

TIMEOUT = timedelta(seconds=300)
"""Far longer than the hang guard: a lease cannot simply expire during a test."""
HEARTBEAT = "1"
FAST = {"CADENZA_HEARTBEAT_SECONDS": HEARTBEAT}
EACH = 3


def _endpoints(target: TargetServer, now: datetime) -> tuple[list[Endpoint], list[Endpoint]]:
    job_start = now + timedelta(seconds=1)
    build = [
        make_endpoint(
            JOB,
            target.url("/hold-first"),
            now,
            every=timedelta(seconds=1),
            start_at=job_start,
            timeout=TIMEOUT,
            delivery=delivery,
        )
        for delivery in [Delivery.AT_LEAST_ONCE] * EACH + [Delivery.AT_MOST_ONCE] * EACH
    ]
    return build[:EACH], build[EACH:]


JOB = make_job(CLOCK.now())


def _keys(target: TargetServer, endpoint: Endpoint) -> list[str]:
    return [h.key for h in target.hits if h.endpoint == endpoint.id]


async def _all_held(target: TargetServer, endpoints: list[Endpoint]) -> None:
    async def check() -> bool:
        return all(_keys(target, e) for e in endpoints)

    await eventually(check, every=0.05)


async def _recovered(target: TargetServer, least: list[Endpoint], most: list[Endpoint]) -> None:
    """at_least_once: the held slot sent again; at_most_once: a later slot sent."""

    async def check() -> bool:
        resent = all(len(_keys(target, e)) >= 2 for e in least)
        moved_on = all(len(set(_keys(target, e))) >= 2 for e in most)
        return resent and moved_on

    await eventually(check, every=0.05)


def _first_rerun(target: TargetServer, endpoints: list[Endpoint]) -> datetime:
    return min(h.at for e in endpoints for h in target.hits if h.endpoint == e.id)


async def _check_history(
    store: Store, target: TargetServer, least: list[Endpoint], most: list[Endpoint], dead: str
) -> None:
    for endpoint in least:
        keys = _keys(target, endpoint)
        assert keys[0] == keys[1]  # the same Idempotency-Key, sent again
        first, again = (await runs_of(store, endpoint.id))[:2]
        # Its start was recorded before it left: cut, outcome unknown, not "never sent".
        assert (first.status, first.worker_id, first.attempt) == (RunStatus.UNKNOWN, dead, 1)
        assert "sent again" in (first.error or "")
        assert (again.scheduled_for, again.attempt) == (first.scheduled_for, 2)
        assert again.status is RunStatus.SUCCESS
    for endpoint in most:
        counts = Counter(_keys(target, endpoint))
        assert set(counts.values()) == {1}, counts  # no slot was ever sent twice
        first = (await runs_of(store, endpoint.id))[0]
        assert (first.status, first.worker_id, first.attempt) == (RunStatus.UNKNOWN, dead, 1)


def _report(label: str, since: datetime, rerun: datetime) -> None:
    seconds = (rerun - since).total_seconds()
    print(f"\n{label}: endpoints ran again {seconds:.2f} s later (heartbeat {HEARTBEAT} s)")


async def test_sqlite_a_restart_frees_the_killed_processs_leases_at_once(tmp_path: Path) -> None:
    url = sqlite_database(tmp_path)
    settings = worker_settings(url)
    async with target_server() as target, build_runtime(settings) as runtime:
        least, most = _endpoints(target, CLOCK.now())
        await seed(runtime.store, JOB, [*least, *most])
        first = await spawn_worker(url, settings.secret_key, tmp_path, "killed", **FAST)
        try:
            await _all_held(target, [*least, *most])
        finally:
            first.kill()
            await first.wait()
        restarted_at = CLOCK.now()
        held = len(target.hits)
        second = await spawn_worker(url, settings.secret_key, tmp_path, "restarted", **FAST)
        try:
            await _recovered(target, least, most)
        finally:
            assert await stop_worker(second) == 0
        _report("SQLite, after the restart", restarted_at, min(h.at for h in target.hits[held:]))
        await _check_history(runtime.store, target, least, most, "killed")
        assert [w.id for w in await runtime.store.list_workers()] == []


@pytest.mark.postgres
async def test_postgres_another_worker_frees_the_killed_workers_leases(tmp_path: Path) -> None:
    with postgres_database() as url:
        settings = worker_settings(url)
        async with target_server() as target, build_runtime(settings) as runtime:
            least, most = _endpoints(target, CLOCK.now())
            await seed(runtime.store, JOB, [*least, *most])
            doomed = await spawn_worker(url, settings.secret_key, tmp_path, "doomed", **FAST)
            survivor = None
            try:
                await _all_held(target, [*least, *most])
                prune = {"CADENZA_DEAD_WORKER_PRUNE_SECONDS": "3"}
                survivor = await spawn_worker(
                    url, settings.secret_key, tmp_path, "survivor", **FAST, **prune
                )

                async def both_registered() -> bool:
                    return len(await runtime.store.list_workers()) == 2

                await eventually(both_registered, every=0.1)
                # Long enough for the survivor to judge others (its own beats must
                # have gone through for 1.5 heartbeats); not a speed assumption.
                await asyncio.sleep(3 * float(HEARTBEAT))
            finally:
                doomed.kill()
                await doomed.wait()
            killed_at = CLOCK.now()
            held = len(target.hits)
            try:
                await _recovered(target, least, most)

                async def dead_one_pruned() -> bool:
                    return [w.id for w in await runtime.store.list_workers()] == ["survivor"]

                await eventually(dead_one_pruned, every=0.1)
            finally:
                assert survivor is not None
                assert await stop_worker(survivor) == 0
            _report("PostgreSQL, after the kill", killed_at, min(h.at for h in target.hits[held:]))
            await _check_history(runtime.store, target, least, most, "doomed")
            assert TIMEOUT.total_seconds() > HANG_GUARD  # a lease cannot have simply expired
