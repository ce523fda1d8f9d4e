"""Fixtures for the REST tests: the real app in-process over a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from api_kit import SECRET, Tenant, make_tenant
from fastapi import FastAPI

from app_kit import migrated_sqlite, sqlite_services
from cadenza.actions.base import Services
from cadenza.api import create_app
from cadenza.config import Settings


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("template"))


@pytest.fixture
async def services(tmp_path: Path, migrated_template: Path) -> AsyncIterator[Services]:
    async with sqlite_services(migrated_template, tmp_path, SECRET) as services:
        yield services


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
