"""Catch-up after downtime: a slot claimed an hour late, under each policy."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from scheduler_kit import (
    CLOCK,
    current,
    eventually,
    make_endpoint,
    make_job,
    running_worker,
    runs_of,
    seed,
    sqlite_database,
    target_server,
    worker_settings,
)

from cadenza.container import build_runtime
from cadenza.domain.model import CatchUp, PlanSource

pytestmark = pytest.mark.anyio

EVERY = timedelta(seconds=10)
DOWNTIME = timedelta(hours=1)


async def test_a_skip_endpoint_does_not_run_a_slot_missed_during_downtime(
    tmp_path: Path,
) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now - DOWNTIME)
        endpoint = make_endpoint(job, target.url("/ok"), now, every=EVERY, catch_up=CatchUp.SKIP)
        stale = now - DOWNTIME
        endpoint = replace(endpoint, last_scheduled_for=stale - EVERY, next_run_at=stale)
        await seed(runtime.store, job, [endpoint])
        async with running_worker(settings, runtime):

            async def replanned() -> bool:
                state = await current(runtime.store, endpoint.id)
                return state.next_run_at is not None and state.next_run_at > now

            await eventually(replanned)
            replanned_by = CLOCK.now()
        state = await current(runtime.store, endpoint.id)
        assert state.lease is None
        assert state.next_run_at is not None
        assert now < state.next_run_at <= replanned_by + EVERY
        # Still on the lattice of the last slot: skipping does not shift the phase.
        assert (state.next_run_at - stale) % EVERY == timedelta(0)
        assert not [
            r for r in await runs_of(runtime.store, endpoint.id) if r.scheduled_for == stale
        ]


async def test_a_run_once_endpoint_runs_the_stale_slot_and_counts_what_it_collapsed(
    tmp_path: Path,
) -> None:
    settings = worker_settings(sqlite_database(tmp_path))
    async with target_server() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now - DOWNTIME)
        endpoint = make_endpoint(job, target.url("/ok"), now, every=EVERY)
        stale = now - DOWNTIME
        endpoint = replace(endpoint, last_scheduled_for=stale - EVERY, next_run_at=stale)
        await seed(runtime.store, job, [endpoint])
        async with running_worker(settings, runtime):

            async def ran() -> bool:
                return bool(await runs_of(runtime.store, endpoint.id))

            await eventually(ran)
            await asyncio.sleep(0)
        first = (await runs_of(runtime.store, endpoint.id))[0]
        assert first.scheduled_for == stale
        assert first.source is PlanSource.BASELINE_INTERVAL
        # An hour of 10 s slots came due (a few more if the worker was slow to start);
        # the run stands for every one of them up to its start.
        assert first.missed_slots == (first.started_at - stale) // EVERY
        assert first.missed_slots >= DOWNTIME // EVERY
