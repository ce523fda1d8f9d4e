"""SIGTERM stops ``cadenza serve`` within its grace period while the planner works
through a backlog of runs (a subprocess, SQLite and PostgreSQL).

The backlog: tens of thousands of runs recorded at once, more than the planner
ingests in the grace period. The bound asserted is the grace period itself (plus
the process's own stop margin), a hang guard, not a speed measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from scheduler_kit import (
    CLOCK,
    HANG_GUARD,
    bulk_seed,
    make_endpoint,
    make_job,
    postgres_database,
    sqlite_database,
    worker_settings,
)

from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.tables import planner_watches, runs
from cadenza.cli.process import STOP_MARGIN
from cadenza.container import Runtime, build_runtime
from cadenza.domain.model import Endpoint, PlanSource, Run, RunStatus
from cadenza.ids import new_id

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

GRACE_SECONDS = 10.0
ENDPOINTS = 1000
RUNS_EACH = 40


@contextlib.contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield sqlite_database(tmp_path)
        return
    with postgres_database() as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_sigterm_under_a_planner_backlog_exits_within_the_grace_period(
    kind: str, tmp_path: Path
) -> None:
    with database(kind, tmp_path) as url:
        settings = worker_settings(url)
        async with build_runtime(settings) as runtime:
            endpoints = await _endpoints(runtime)
            process = await _serve(url, settings.secret_key, tmp_path)
            try:
                await _until(lambda: _log_has(tmp_path, "Cadenza is running"))
                await _record_backlog(runtime, endpoints)
                await _until(lambda: _watching(runtime))
                process.send_signal(signal.SIGTERM)
                started = CLOCK.monotonic()
                code = await asyncio.wait_for(process.wait(), HANG_GUARD)
                took = CLOCK.monotonic() - started
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log[-3000:]
    assert took <= GRACE_SECONDS + STOP_MARGIN, (took, log[-3000:])
    assert "process.grace_exceeded" not in log


async def _endpoints(runtime: Runtime) -> list[Endpoint]:
    now = CLOCK.now()
    job = make_job(now)
    later = now + timedelta(hours=1)  # the scheduler has nothing to do meanwhile
    every = timedelta(hours=1)
    made = [
        make_endpoint(job, "http://127.0.0.1:9/", now, every=every, start_at=later)
        for _ in range(ENDPOINTS)
    ]
    await bulk_seed(runtime, job, made)
    return made


async def _record_backlog(runtime: Runtime, endpoints: list[Endpoint]) -> None:
    """Runs recorded as a fleet of workers would, all at once: alternating success
    and failure, so each one is a change that wakes the planner and every sibling.

    Their ids sort a minute ahead: however late the process's planner started, it
    reads them as new (it starts reading at its own start)."""
    assert isinstance(runtime.store, SqlStore)
    now = CLOCK.now()
    ahead = now + timedelta(minutes=1)
    rows = []
    for n in range(RUNS_EACH):
        slot = now - timedelta(seconds=RUNS_EACH - n)
        status = RunStatus.SUCCESS if n % 2 else RunStatus.FAILURE
        for endpoint in endpoints:
            run = Run(
                new_id("run", ahead),
                endpoint.id,
                endpoint.job_id,
                endpoint.tenant_id,
                slot,
                slot,
                slot,
                status,
                PlanSource.BASELINE_INTERVAL,
                http_status=200 if n % 2 else 500,
            )
            rows.append(Codec.run_row(run))
    async with runtime.store.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(runs.insert(), rows[start : start + 5000])


async def _watching(runtime: Runtime) -> bool:
    assert isinstance(runtime.store, SqlStore)
    async with runtime.store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(planner_watches)
        count = (await conn.execute(query)).scalar()
    return bool(count)


def _log_has(directory: Path, text: str) -> bool:
    path = directory / "serve.log"
    return path.exists() and text in path.read_text(errors="replace")


async def _until(check: object) -> None:
    deadline = CLOCK.monotonic() + HANG_GUARD
    while True:
        value = check()  # type: ignore[operator]
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if CLOCK.monotonic() > deadline:
            pytest.fail(f"not met within {HANG_GUARD} s")
        await asyncio.sleep(0.1)


async def _serve(url: str, secret: str, workdir: Path) -> asyncio.subprocess.Process:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CADENZA_DATABASE_URL": url,
        "CADENZA_SECRET_KEY": secret,
        "CADENZA_SSRF_ALLOWLIST": '["127.0.0.1/32"]',
        "CADENZA_PORT": str(port),
        "CADENZA_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "CADENZA_PLANNER_DEBOUNCE_SECONDS": "0",
        "CADENZA_ADMIN_EMAIL": "admin@example.com",
        "CADENZA_ADMIN_PASSWORD": "a-long-admin-password",
    }
    with (workdir / "serve.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cadenza.cli", "serve", cwd=workdir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
