"""Fixtures for the dashboard's in-process tests: the real app (REST API with the
dashboard mounted, as ``cadenza serve`` builds it) over a real SQLite store."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from web_kit import SECRET, START, CountingWaker, Person, make_person

from cadenza.actions.base import Services
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.api import create_app
from cadenza.api.browser import BrowserSessions
from cadenza.config import Settings
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher
from cadenza.testing.planner_store import MemoryPlannerStore
from cadenza.web import mount_dashboard
from catalogue_cases import alert_services


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("web-template") / "web.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def services(tmp_path: Path, web_template: Path) -> AsyncIterator[Services]:
    path = tmp_path / "web.db"
    shutil.copyfile(web_template, path)
    store = await open_store(
        f"sqlite+aiosqlite:///{path}", FernetSecretBox(FernetSecretBox.generate_key())
    )
    clock = FrozenClock(START)
    yield Services(
        store=store,
        clock=clock,
        waker=CountingWaker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=SECRET,
        planner=MemoryPlannerStore(),
        **alert_services(clock),
        auth_store=SqlAuthStore(store.engine),
    )
    await store.close()


@pytest.fixture
def app(services: Services) -> FastAPI:
    app = create_app(services, Settings(_env_file=None, rate_limit_per_minute=1_000_000))
    mount_dashboard(app, services, BrowserSessions(app.state.auth))
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def alice(services: Services) -> Person:
    return await make_person(services, "alice@example.com")


@pytest.fixture
async def bob(services: Services) -> Person:
    return await make_person(services, "bob@example.com")
