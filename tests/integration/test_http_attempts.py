"""A run records the HTTP requests it made, in-run retries included (issue #16.6),
apart from ``attempt``, which numbers the slot's tries. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from scheduler_kit import (
    CLOCK,
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

from cadenza.container import build_runtime
from cadenza.domain.model import RetryPolicy, RunStatus

pytestmark = pytest.mark.anyio

ANSWERS = (500, 500, 200)
SOON = timedelta(milliseconds=200)


@contextlib.contextmanager
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield sqlite_database(tmp_path)


def pg_url(_: Path) -> AbstractContextManager[str]:
    return postgres_database()


@contextlib.asynccontextmanager
async def flaky_target() -> AsyncIterator[tuple[str, Counter[str]]]:
    """127.0.0.1 target answering 500, 500, then 200 to each path's requests."""
    seen: Counter[str] = Counter()

    async def answer(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return web.Response(status=ANSWERS[min(seen[request.path], len(ANSWERS)) - 1])

    app = web.Application()
    app.router.add_get("/{name}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("database", [sqlite_url, pg_url], ids=["sqlite", "postgres"])
async def test_three_http_attempts_are_recorded_as_three(
    tmp_path: Path, database: Callable[[Path], AbstractContextManager[str]]
) -> None:
    with database(tmp_path) as url:
        settings = worker_settings(url)
        async with flaky_target() as (base, seen), build_runtime(settings) as runtime:
            now = CLOCK.now()
            job = make_job(now)
            endpoint = make_endpoint(
                job, f"{base}/flaky", now, every=timedelta(hours=1), start_at=now + SOON
            )
            retry = RetryPolicy(max_attempts=5, backoff=timedelta(milliseconds=100))
            endpoint = replace(endpoint, request=replace(endpoint.request, retry=retry))
            await seed(runtime.store, job, [endpoint])
            async with running_worker(settings, runtime, lookahead=0.5):

                async def recorded() -> bool:
                    return bool(await runs_of(runtime.store, endpoint.id))

                await eventually(recorded)
            [run] = await runs_of(runtime.store, endpoint.id)
    assert seen["/flaky"] == len(ANSWERS)
    assert (run.status, run.http_status) == (RunStatus.SUCCESS, 200)
    assert (run.http_attempts, run.attempt) == (3, 1)
