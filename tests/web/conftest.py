"""Fixtures for the dashboard's in-process tests: the real app (REST API with the
dashboard mounted, as ``cadenza serve`` builds it) over a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from web_kit import SECRET, Person, make_person

from app_kit import migrated_sqlite, sqlite_services
from cadenza.actions.base import Services
from cadenza.api import create_app
from cadenza.api.browser import BrowserSessions
from cadenza.config import Settings
from cadenza.web import mount_dashboard


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("web-template"))


@pytest.fixture
async def services(tmp_path: Path, web_template: Path) -> AsyncIterator[Services]:
    async with sqlite_services(web_template, tmp_path, SECRET) as services:
        yield services


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
