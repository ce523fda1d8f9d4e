"""Shared pieces of the scheduler's integration tests: a loopback target server that
can hold requests, entity builders, a migrated database, and test settings."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.http.loop import install_uvloop
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.tables import endpoints as endpoints_table
from cadenza.config import Settings
from cadenza.container import Runtime, Worker, build_worker, scheduler_options
from cadenza.domain import lifecycle
from cadenza.domain.model import Endpoint, Job, Method, Request, Run
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import RunFilter, Store

TENANT = "usr_scheduler_tests"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
CLOCK = SystemClock()


@dataclass
class Hit:
    path: str
    at: datetime
    endpoint: str
    key: str
    """The Idempotency-Key header: endpoint id and slot."""


@dataclass
class TargetServer:
    """What the loopback target saw; ``release`` lets held requests answer."""

    base: str = ""
    hits: list[Hit] = field(default_factory=list)
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return self.base + path


def _hit(state: TargetServer, request: web.Request) -> Hit:
    endpoint = request.query.get("e", "")
    hit = Hit(request.path, CLOCK.now(), endpoint, request.headers.get("Idempotency-Key", ""))
    state.hits.append(hit)
    return hit


def _app(state: TargetServer) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        _hit(state, request)
        return web.Response(text="ok")

    async def hold(request: web.Request) -> web.Response:
        _hit(state, request)
        state.held.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.release.wait(), 30)
        return web.Response(text="held")

    async def hold_first(request: web.Request) -> web.Response:
        """Holds the first request of each endpoint (the first ``n``, for
        ``/hold-first/{n}``), answers the later ones."""
        hit = _hit(state, request)
        if sum(h.endpoint == hit.endpoint for h in state.hits) > int(
            request.match_info.get("n", "1")
        ):
            return web.Response(text="ok")
        state.held.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.release.wait(), 30)
        return web.Response(text="held")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/hold", hold)
    app.router.add_get("/hold-first", hold_first)
    app.router.add_get("/hold-first/{n}", hold_first)
    return app


@contextlib.asynccontextmanager
async def target_server() -> AsyncIterator[TargetServer]:
    """An aiohttp server on 127.0.0.1, port chosen by the OS."""
    state = TargetServer()
    runner = web.AppRunner(_app(state), handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


def _serve_ok(conn: Connection) -> None:
    """Child process: answers ``GET /ok``; sends its port, then serves until killed."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ok", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.sleep(3600)  # bounded; the parent terminates it much sooner

    install_uvloop()  # the target must not be what the workers wait for
    asyncio.run(main())


@contextlib.contextmanager
def target_process() -> Iterator[str]:
    """Base URL of an ``/ok`` server in its own process, for load that would crowd
    the test's own event loop."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve_ok, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the target server process did not start")
        yield f"http://127.0.0.1:{parent.recv()}"
    finally:
        process.terminate()
        process.join(10)


def make_job(now: datetime) -> Job:
    return Job(
        id=new_id("job", now), tenant_id=TENANT, name="scheduler", created_at=now, updated_at=now
    )


def make_endpoint(
    job: Job,
    url: str,
    now: datetime,
    *,
    every: timedelta = timedelta(seconds=1),
    start_at: datetime | None = None,
    timeout: timedelta = timedelta(seconds=10),
    **fields: Any,
) -> Endpoint:
    """An interval endpoint, planned: ``next_run_at`` is its first slot."""
    endpoint = Endpoint(
        id=new_id("ept", now),
        job_id=job.id,
        tenant_id=job.tenant_id,
        name="ping",
        request=Request(Method.GET, url, timeout=timeout),
        baseline=IntervalSchedule(every, start_at=start_at),
        created_at=now,
        updated_at=now,
        **fields,
    )
    endpoint = replace(endpoint, request=replace(endpoint.request, url=f"{url}?e={endpoint.id}"))
    return lifecycle.replan(endpoint, job, now)


async def seed(store: Store, job: Job, endpoints: list[Endpoint]) -> None:
    async with store.transaction() as tx:
        await tx.insert_job(job)
        for endpoint in endpoints:
            await tx.insert_endpoint(endpoint)


async def bulk_seed(runtime: Runtime, job: Job, endpoints: list[Endpoint]) -> None:
    """Insert many endpoints in one statement (the SQL store's tables directly):
    ``insert_endpoint`` makes two round trips per row, too slow for thousands."""
    assert isinstance(runtime.store, SqlStore)
    async with runtime.store.transaction() as tx:
        await tx.insert_job(job)
    codec = Codec(runtime.secret_box)
    async with runtime.store.engine.begin() as conn:
        await conn.execute(endpoints_table.insert(), [codec.endpoint_row(e) for e in endpoints])


async def runs_of(store: Store, endpoint_id: str) -> list[Run]:
    """Every run of one endpoint, oldest first."""
    found: list[Run] = []
    cursor: str | None = None
    async with store.transaction(readonly=True) as tx:
        while True:
            page = await tx.list_runs(
                TENANT, RunFilter(endpoint_id=endpoint_id), cursor=cursor, limit=500
            )
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    return sorted(found, key=lambda r: (r.scheduled_for, r.attempt))


async def current(store: Store, endpoint_id: str) -> Endpoint:
    async with store.transaction(readonly=True) as tx:
        return await tx.get_endpoint(TENANT, endpoint_id)


HANG_GUARD = 60.0
"""Seconds a test waits for something that takes a second or two on a quiet machine:
only a hang fails it, never a slow host."""


async def eventually(check: Any, *, within: float = HANG_GUARD, every: float = 0.02) -> None:
    """Poll the async predicate ``check`` until it holds, or fail after ``within`` s
    (a hang guard, not a speed limit)."""
    deadline = CLOCK.monotonic() + within
    while not await check():
        if CLOCK.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(every)


def worker_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": FernetSecretBox.generate_key(),
        "ssrf_allowlist": ["127.0.0.1/32"],
        "shutdown_grace_seconds": 2.0,
    }
    return Settings(**(values | overrides))


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, runtime: Runtime, **options: Any
) -> AsyncIterator[Worker]:
    """A worker running in this event loop; stopped gracefully on exit.

    ``options`` override ``SchedulerOptions`` fields (e.g. ``lookahead=5.0``).
    """
    tuned = replace(scheduler_options(settings), **options)
    async with build_worker(settings, runtime, options=tuned) as worker:
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task


async def spawn_worker(
    database_url: str, secret_key: str, workdir: Path, worker_id: str, **env: str
) -> asyncio.subprocess.Process:
    """``python -m cadenza.cli worker`` with its logs in ``workdir/<worker_id>.log``."""
    environ = {
        **os.environ,
        "CADENZA_DATABASE_URL": database_url,
        "CADENZA_SECRET_KEY": secret_key,
        "CADENZA_SSRF_ALLOWLIST": '["127.0.0.1/32"]',
        "CADENZA_WORKER_ID": worker_id,
        "CADENZA_LOG_FORMAT": "json",
        **env,
    }
    log = (workdir / f"{worker_id}.log").open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cadenza.cli",
            "worker",
            cwd=workdir,
            env=environ,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()


async def stop_workers(processes: list[asyncio.subprocess.Process]) -> list[int]:
    """SIGTERM to all at once (so none carries the others' load), then their codes."""
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    return [await _exit_code(p) for p in processes]


async def stop_worker(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, then the exit code (killed if it has not exited within 20 s)."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await _exit_code(process)


async def _exit_code(process: asyncio.subprocess.Process) -> int:
    # One signal only: a second one means "stop now" and may kill the process.
    try:
        return await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise


def sqlite_database(directory: Path) -> str:
    url = f"sqlite+aiosqlite:///{directory / 'cadenza.db'}"
    migrate(url)
    return url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards; skips the test when
    no server answers on 127.0.0.1:5432."""
    try:
        admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    name = f"cadenza_sched_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
