"""Shared parts of the scheduler benchmarks: a target server in its own process,
throwaway databases, bulk seeding, and a worker run in-process.

Network is 127.0.0.1 only. Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import secrets
import statistics
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import psycopg
from aiohttp import web

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.tables import endpoints as endpoints_table
from cadenza.config import Settings
from cadenza.container import Runtime, Worker, build_worker, scheduler_options
from cadenza.domain.model import Endpoint, Job, Method, PlanSource, Request
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TENANT = "usr_bench"
CLOCK = SystemClock()


def _serve_target(conn: Connection) -> None:
    """Child process: an aiohttp server answering ``GET /ok`` with a short body."""
    from cadenza.adapters.http.loop import install_uvloop

    install_uvloop()

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
        # Bounded: the parent terminates us long before this ends.
        await asyncio.sleep(6 * 3600)

    asyncio.run(main())


@contextlib.contextmanager
def target_process() -> Iterator[str]:
    """Base URL of a target server in a separate process (so it does not share the
    worker's event loop or its core)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve_target, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("target server did not start")
        yield f"http://127.0.0.1:{parent.recv()}"
    finally:
        process.terminate()
        process.join(10)


SQLITE_FILE = "bench.db"
"""The name of ``database``'s SQLite file (beside it: its ``-wal`` and ``-shm``)."""


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh migrated database: ``sqlite`` (temp file) or ``postgres`` (dropped after)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / SQLITE_FILE}"
            migrate(url)
            yield url
        return
    name = f"cadenza_schedbench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_available() -> bool:
    try:
        psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def bench_settings(url: str, *, concurrency: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "secret_key": FernetSecretBox.generate_key(),
        "ssrf_allowlist": ["127.0.0.1/32"],
        "max_concurrency": concurrency,
        # One target host: the per-host cap is the global cap, as in the baseline.
        "max_per_host": concurrency,
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def make_job(now: datetime) -> Job:
    return Job(new_id("job", now), TENANT, "bench", now, now)


def make_endpoint(job: Job, url: str, now: datetime, every: timedelta, first: datetime) -> Endpoint:
    return Endpoint(
        id=new_id("ept", now),
        job_id=job.id,
        tenant_id=TENANT,
        name="bench",
        request=Request(Method.GET, url, timeout=timedelta(seconds=10)),
        baseline=IntervalSchedule(every, start_at=first),
        created_at=now,
        updated_at=now,
        next_run_at=first,
        next_run_source=PlanSource.BASELINE_INTERVAL,
    )


async def seed(runtime: Runtime, job: Job, endpoints: Sequence[Endpoint]) -> None:
    """Insert the job, then the endpoints in statements of 5,000 rows straight into the
    SQL store's table: ``insert_endpoint`` makes two round trips per row."""
    assert isinstance(runtime.store, SqlStore)
    async with runtime.store.transaction() as tx:
        await tx.insert_job(job)
    codec = Codec(runtime.secret_box)
    for start in range(0, len(endpoints), 5000):
        rows = [codec.endpoint_row(e) for e in endpoints[start : start + 5000]]
        async with runtime.store.engine.begin() as conn:
            await conn.execute(endpoints_table.insert(), rows)


@contextlib.asynccontextmanager
async def running(settings: Settings, runtime: Runtime, **options: object) -> AsyncIterator[Worker]:
    tuned = replace(scheduler_options(settings), **options)  # type: ignore[arg-type]
    async with build_worker(settings, runtime, options=tuned) as worker:
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb() -> float:
    """Resident set size of this process from /proc (no psutil)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
