"""Overlap policy with a real worker and a slow loopback target, on SQLite and
PostgreSQL: ``allow`` runs overlap up to ``max_in_flight``; ``skip`` never overlaps.

The target holds every request until the test releases it and keeps its own log of
how many requests of each endpoint it held at once. Every wait is on an event of
that log, with a hang guard: nothing here depends on the host's speed. The skip
endpoint shares the allow endpoint's lattice, so by the time the allow endpoint's
third slot has reached the target, the skip endpoint's second slot has come due
while its first run was held.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from scheduler_kit import (
    CLOCK,
    HANG_GUARD,
    eventually,
    make_endpoint,
    make_job,
    postgres_database,
    running_worker,
    runs_of,
    seed,
    sqlite_database,
    worker_settings,
)

from cadenza.container import Runtime, build_runtime
from cadenza.domain.governor import explain_plan
from cadenza.domain.model import Overlap, RunStatus

pytestmark = pytest.mark.anyio

BOUND = 3


@dataclass
class SlowTarget:
    """Holds requests until ``release``; counts each endpoint's requests held at once."""

    base: str = ""
    holding: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)
    keys: list[tuple[str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = request.query.get("e", "")
        self.keys.append((endpoint, request.headers.get("Idempotency-Key", "")))
        self.holding[endpoint] += 1
        self.most[endpoint] = max(self.most[endpoint], self.holding[endpoint])
        self.changed.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), HANG_GUARD)
        finally:
            self.holding[endpoint] -= 1
        return web.Response(text="ok")


@contextlib.asynccontextmanager
async def slow_target() -> AsyncIterator[SlowTarget]:
    state = SlowTarget()
    app = web.Application()
    app.router.add_get("/slow", state.handle)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        state.released.set()
        await runner.cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_database(tmp_path)
        return
    with postgres_database() as url:
        yield url


async def test_allow_overlaps_up_to_its_bound_and_skip_never_overlaps(database: str) -> None:
    settings = worker_settings(database)
    async with slow_target() as target, build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        start = now + timedelta(seconds=1)
        slow = f"{target.base}/slow"
        common = {
            "every": timedelta(seconds=1),
            "start_at": start,
            "timeout": timedelta(seconds=60),
        }
        allow = make_endpoint(job, slow, now, overlap=Overlap.ALLOW, max_in_flight=BOUND, **common)
        skip = make_endpoint(job, slow, now, **common)
        await seed(runtime.store, job, [allow, skip])
        async with running_worker(settings, runtime):
            await _until(target, lambda: target.holding[allow.id] >= BOUND)
            # Three slots of the shared lattice have come: the skip endpoint's first
            # run is still held, and no second one was sent.
            assert target.holding[skip.id] == 1
            # Full: people and agents are told so (``explain_schedule``).
            async with runtime.store.transaction(readonly=True) as tx:
                held = await tx.get_endpoint(job.tenant_id, allow.id)
            assert (held.in_flight, held.full) == (BOUND, True)
            rules = [s.rule for s in explain_plan(CLOCK.now(), held, job).explanation]
            assert "in-flight-full" in rules
            target.released.set()
            await eventually(lambda: _runs_at_least(runtime, skip.id, 2))
            await eventually(lambda: _runs_at_least(runtime, allow.id, BOUND + 1))
        assert target.most[allow.id] == BOUND
        assert target.most[skip.id] == 1
        allow_runs = await runs_of(runtime.store, allow.id)
        slots = [r.scheduled_for for r in allow_runs]
        assert len(slots) == len(set(slots))  # each slot ran once
        assert all(r.status is RunStatus.SUCCESS for r in allow_runs)
        sent = [key for endpoint, key in target.keys if endpoint == allow.id]
        assert len(sent) == len(set(sent))  # and was sent once


async def _until(target: SlowTarget, condition: Callable[[], bool]) -> None:
    """Wait, on the target's own events, until ``condition()`` holds."""
    async with asyncio.timeout(HANG_GUARD):
        while not condition():
            target.changed.clear()
            await target.changed.wait()


async def _runs_at_least(runtime: Runtime, endpoint_id: str, count: int) -> bool:
    return len(await runs_of(runtime.store, endpoint_id)) >= count
