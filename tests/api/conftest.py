"""Fixtures for the REST tests: the real app in-process over a real SQLite store."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from api_kit import SECRET, START, CountingWaker, Tenant, make_tenant
from fastapi import FastAPI

from cadenza.actions.base import Services
from cadenza.adapters.http import AddressPolicy
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher
from cadenza.testing.planner_store import MemoryPlannerStore
from catalogue_cases import alert_services


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "api.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def services(tmp_path: Path, migrated_template: Path) -> AsyncIterator[Services]:
    path = tmp_path / "api.db"
    shutil.copyfile(migrated_template, path)
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
        targets=AddressPolicy(),
    )
    await store.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(rate_limit_per_minute=1_000_000)


@pytest.fixture
def app(services: Services, settings: Settings) -> FastAPI:
    return create_app(services, settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def alice(services: Services) -> Tenant:
    return await make_tenant(services, "alice@example.com")


@pytest.fixture
async def bob(services: Services) -> Tenant:
    return await make_tenant(services, "bob@example.com")
