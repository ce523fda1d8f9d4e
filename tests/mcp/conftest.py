"""Fixtures for the MCP tests: a real SQLite store, the real HTTP dispatcher opened to
127.0.0.1 only, a loopback HTTP target, tenants with API keys, ``cadenza serve`` as a
process, and the official TypeScript SDK (installed from the npm registry on first
use, from tests/mcp/ts/package-lock.json)."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from mcp_kit import (
    CADENZA,
    LOOPBACK,
    SECRET,
    START,
    CountingWaker,
    Live,
    Served,
    Target,
    Tenant,
    free_port,
    make_tenant,
    wait_until_ready,
)

from cadenza.actions.base import Services
from cadenza.adapters.clock import SystemClock
from cadenza.adapters.http import HttpDispatcher
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.notify_sql import SqlNotifyStore
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.bootstrap import server_secret
from cadenza.config import Settings
from cadenza.container import secret_box
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher
from catalogue_cases import alert_services


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    seen = Target()

    async def answer(request: web.Request) -> web.Response:
        seen.hits[request.path] += 1
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = runner.addresses[0][1]
    seen.base = f"http://{LOOPBACK}:{port}"
    yield seen
    await runner.cleanup()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("mcp-template") / "mcp.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def services(tmp_path: Path, migrated_template: Path) -> AsyncIterator[Services]:
    path = tmp_path / "mcp.db"
    shutil.copyfile(migrated_template, path)
    box = FernetSecretBox(FernetSecretBox.generate_key())
    store = await open_store(f"sqlite+aiosqlite:///{path}", box)
    clock = FrozenClock(START)
    dispatcher = HttpDispatcher(clock, allowlist=[LOOPBACK])
    yield Services(
        store=store,
        clock=clock,
        waker=CountingWaker(),
        dispatcher=dispatcher,
        secret_key=SECRET,
        planner=SqlPlannerStore(store.engine),
        **alert_services(clock, SqlNotifyStore(store.engine, box)),
    )
    await dispatcher.close()
    await store.close()


@pytest.fixture
async def alice(services: Services) -> Tenant:
    return await make_tenant(services, "alice@example.com")


@pytest.fixture
async def bob(services: Services) -> Tenant:
    return await make_tenant(services, "bob@example.com")


@pytest.fixture
async def live(tmp_path: Path, migrated_template: Path) -> AsyncIterator[Live]:
    path = tmp_path / "live.db"
    shutil.copyfile(migrated_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    secret = "live-test-secret-0123456789abcdef"
    settings = Settings(
        _env_file=None, database_url=url, secret_key=secret, ssrf_allowlist=[LOOPBACK]
    )
    box = secret_box(settings)
    store = await open_store(url, box)
    clock = SystemClock()
    services = Services(
        store=store,
        clock=clock,
        waker=CountingWaker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=server_secret(settings),
        planner=SqlPlannerStore(store.engine),
        **alert_services(clock, SqlNotifyStore(store.engine, box)),
    )
    env = {
        "CADENZA_DATABASE_URL": url,
        "CADENZA_SECRET_KEY": secret,
        "CADENZA_SSRF_ALLOWLIST": json.dumps([LOOPBACK]),
        "CADENZA_LOG_LEVEL": "warning",
    }
    yield Live(settings, services, env, tmp_path)
    await store.close()


STARTUP_SECONDS = 60


@pytest.fixture
async def served(live: Live) -> AsyncIterator[Served]:
    """``cadenza serve`` on a free loopback port over the ``live`` database."""
    port = free_port()
    env = {**live.env, "CADENZA_HOST": LOOPBACK, "CADENZA_PORT": str(port)}
    with (live.cwd / "serve.log").open("w") as log:
        process = await anyio.open_process(
            [CADENZA, "serve"], env=env, cwd=live.cwd, stdout=log, stderr=log
        )
        base = f"http://{LOOPBACK}:{port}"
        try:
            with anyio.fail_after(STARTUP_SECONDS):
                await wait_until_ready(f"{base}/openapi.json", process)
            yield Served(f"{base}/mcp", process)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with anyio.move_on_after(30):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


TS_DIR = Path(__file__).parent / "ts"
NPM_SECONDS = 600


@pytest.fixture(scope="session")
def typescript_sdk() -> Path:
    """The TypeScript driver (tests/mcp/ts/driver.mjs), its SDK installed.

    ``npm ci`` installs exactly the locked versions, from the npm registry, the first
    time and whenever package-lock.json changes (a stamp keeps the lock file's digest).
    """
    npm = shutil.which("npm")
    assert shutil.which("node"), "The TypeScript SDK tests need Node.js 18+ on PATH."
    assert npm, "The TypeScript SDK tests need npm on PATH."
    lock = TS_DIR / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = TS_DIR / "node_modules" / ".cadenza-lock-digest"
    if not stamp.exists() or stamp.read_text() != digest:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=TS_DIR,
            check=True,
            timeout=NPM_SECONDS,
        )
        stamp.write_text(digest)
    return TS_DIR / "driver.mjs"
