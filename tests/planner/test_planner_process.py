"""``cadenza planner`` as a process on SQLite: SIGTERM ends it within the grace period,
however much work it has before it.

Two ways it used to hang: a backlog of thousands of due analyses (a pass worked
through all of it before looking at the stop), and a model call that never answers.
Each test starts the real command, waits until it is busy, sends SIGTERM, and checks
logical outcomes: the process exited 0 on its own, every service stopped inside the
grace period (the command logs when it has to cancel one), the backlog was not
worked through first, and the cut-short analysis is recorded as cancelled. Timeouts
are hang guards only.
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.config import Settings
from cadenza.container import secret_box
from cadenza.domain import lifecycle
from cadenza.domain.model import Endpoint
from cadenza.domain.planning import (
    EndpointPlanner,
    PlannerKind,
    PlannerSession,
    Policies,
    SessionOutcome,
    TightenOnFailures,
    WatchState,
)

from .factories import TENANT, guarded, job
from .model_server import HANG, Reply, briefing_of, conclusion, serve

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HANG_GUARD = 120
GRACE_SECONDS = 10
SECRET = "planner-process-secret-0123456789"
CADENZA = shutil.which("cadenza", path=str(Path(sys.executable).parent)) or "cadenza"
PROMPT = [f"prompt-{n:02d}" for n in range(20)]
BACKLOG = 3000


@dataclass
class Database:
    url: str
    cwd: Path

    def settings(self) -> Settings:
        return Settings(_env_file=None, database_url=self.url, secret_key=SECRET)

    async def seed(self, endpoints: list[Endpoint], config: EndpointPlanner) -> None:
        """The endpoints in one job, each with ``config`` and a watch due now."""
        store = await open_store(self.url, secret_box(self.settings()))
        planner = SqlPlannerStore(store.engine)
        now = SystemClock().now()
        the_job = job()
        try:
            async with store.transaction() as tx:
                await tx.insert_job(the_job)
                for ep in endpoints:
                    await tx.insert_endpoint(lifecycle.replan(ep, the_job, now))
            for ep in endpoints:
                await planner.put_planner(replace(config, endpoint_id=ep.id))
                await planner.put_watch(WatchState(TENANT, ep.id, ep.job_id, due_at=now))
        finally:
            await store.close()

    async def sessions(self) -> list[PlannerSession]:
        store = await open_store(self.url, secret_box(self.settings()))
        try:
            page = await SqlPlannerStore(store.engine).list_sessions(
                TENANT, endpoint_id=None, cursor=None, limit=500
            )
        finally:
            await store.close()
        return page.items


@pytest.fixture
def database(tmp_path: Path) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path / 'planner.db'}"
    migrate(url)
    return Database(url, tmp_path)


@dataclass
class Planner:
    process: Process
    log: Path

    def text(self) -> str:
        return self.log.read_text()


@asynccontextmanager
async def cadenza_planner(database: Database, **env: str) -> AsyncIterator[Planner]:
    """``cadenza planner`` running on ``database``; killed if a test leaves it running."""
    environment = {
        "PATH": str(Path(sys.executable).parent),
        "CADENZA_DATABASE_URL": database.url,
        "CADENZA_SECRET_KEY": SECRET,
        "CADENZA_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "CADENZA_PLANNER_DEBOUNCE_SECONDS": "1",
        **env,
    }
    log = database.cwd / "planner.log"
    with log.open("w") as sink:
        process = await anyio.open_process(
            [CADENZA, "planner"], env=environment, cwd=database.cwd, stdout=sink, stderr=sink
        )
        try:
            yield Planner(process, log)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def until_sessions(database: Database, planner: Planner, count: int) -> None:
    with anyio.fail_after(HANG_GUARD):
        while len(await database.sessions()) < count:
            assert planner.process.returncode is None, planner.text()
            await anyio.sleep(0.2)


async def stopped_by_sigterm(planner: Planner) -> None:
    planner.process.send_signal(signal.SIGTERM)
    with anyio.fail_after(HANG_GUARD):
        await planner.process.wait()
    text = planner.text()
    assert planner.process.returncode == 0, text
    assert "planner.stopped" in text
    assert "process.stopped" in text
    assert "grace_exceeded" not in text


async def test_sigterm_under_a_backlog_of_analyses_exits_within_the_grace_period(
    database: Database,
) -> None:
    tighten = Policies(tighten_on_failures=TightenOnFailures(streak=2))
    endpoints = [guarded(f"ep{n:04d}", every=3600) for n in range(BACKLOG)]
    await database.seed(endpoints, EndpointPlanner(TENANT, "", policies=tighten))
    async with cadenza_planner(database) as planner:
        await until_sessions(database, planner, 20)
        await stopped_by_sigterm(planner)
    store = await open_store(database.url, secret_box(database.settings()))
    try:
        left = await SqlPlannerStore(store.engine).due_watches(SystemClock().now(), limit=BACKLOG)
    finally:
        await store.close()
    assert left, "the backlog was worked through before the stop: make it larger"


def answer(body: dict[str, object]) -> Reply:
    return HANG if '"name": "stuck"' in briefing_of(body) else (200, conclusion(), {})  # type: ignore[arg-type]


async def test_sigterm_while_a_model_hangs_exits_within_the_grace_period(
    database: Database,
) -> None:
    endpoints = [guarded(name, every=3600) for name in ["stuck", *PROMPT]]
    await database.seed(endpoints, EndpointPlanner(TENANT, "", kind=PlannerKind.LLM))
    async with serve(answer) as server:
        model = {
            "CADENZA_PLANNER_MODEL": "test-model",
            "CADENZA_PLANNER_BASE_URL": server.base_url,
            "CADENZA_PLANNER_API_KEY": "sk-test",
            "CADENZA_PLANNER_DEADLINE_SECONDS": "3600",
        }
        async with cadenza_planner(database, **model) as planner:
            await until_sessions(database, planner, len(PROMPT))
            assert server.open == 1
            await stopped_by_sigterm(planner)
    sessions = {s.endpoint_id: s for s in await database.sessions()}
    assert {sessions[f"end_{n}"].outcome for n in PROMPT} == {SessionOutcome.NO_CHANGE}
    stuck = sessions["end_stuck"]
    assert stuck.outcome is SessionOutcome.CANCELLED
    assert (stuck.planner, stuck.model) == (PlannerKind.LLM, "test-model")
