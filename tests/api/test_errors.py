"""The one table from error types to HTTP statuses, and problem+json for the rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx2
import pytest
from api_kit import SECRET, START, CountingWaker, make_tenant

from cadenza.actions.base import Services
from cadenza.api import create_app
from cadenza.api.errors import status_of
from cadenza.config import Settings
from cadenza.domain import errors
from cadenza.ports import Tx
from cadenza.testing import FrozenClock, MemoryStore
from cadenza.testing.dispatch import FakeDispatcher

EXPECTED = {
    errors.ValidationError("x"): 422,
    errors.InvalidCron("x"): 422,
    errors.InvalidInput([("a", "b")]): 422,
    errors.JobNotFound("j"): 404,
    errors.ApiKeyNotFound("k"): 404,
    errors.Archived("x"): 409,
    errors.DuplicateName("x"): 409,
    errors.AuthenticationFailed("x"): 401,
    errors.PermissionDenied("x"): 403,
    errors.RateLimited("x", 1.0): 429,
    errors.UnsafeTarget("x"): 422,
    errors.BudgetExhausted("x"): 429,
    errors.PayloadTooLarge("x"): 413,
    errors.ServiceUnavailable("x"): 503,
}


@pytest.mark.parametrize(("error", "status"), EXPECTED.items(), ids=lambda v: str(v)[:30])
def test_each_error_type_maps_to_its_status(error: errors.CadenzaError, status: int) -> None:
    assert status_of(error)[0] == status


class BrokenStore(MemoryStore):
    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        raise RuntimeError("database on fire: password=hunter2")
        yield  # pragma: no cover


class BrokenListTx:
    """A unit of work whose job list fails; everything else works."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        if name == "list_jobs":
            raise RuntimeError("database on fire: password=hunter2")
        return getattr(self._tx, name)


class BrokenListStore(MemoryStore):
    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        async with super().transaction(readonly=readonly) as tx:
            yield cast(Tx, BrokenListTx(tx))


@pytest.mark.anyio
async def test_an_unexpected_failure_is_a_500_problem_without_internals() -> None:
    clock = FrozenClock(START)
    services = Services(BrokenListStore(), clock, CountingWaker(), FakeDispatcher(clock), SECRET)
    tenant = await make_tenant(services, "ada@example.com")
    app = create_app(services, Settings())
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/jobs", headers=tenant.headers)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "hunter2" not in response.text


@pytest.mark.anyio
async def test_a_store_failure_while_checking_a_key_is_a_503_not_a_401() -> None:
    clock = FrozenClock(START)
    services = Services(BrokenStore(), clock, CountingWaker(), FakeDispatcher(clock), SECRET)
    app = create_app(services, Settings())
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(
            "/api/v1/me", headers={"Authorization": "Bearer cdz_abcdefgh_secret"}
        )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "service_unavailable"
    assert "hunter2" not in response.text


@pytest.mark.anyio
async def test_every_401_says_how_to_authenticate() -> None:
    clock = FrozenClock(START)
    services = Services(MemoryStore(), clock, CountingWaker(), FakeDispatcher(clock), SECRET)
    app = create_app(services, Settings())
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for headers in ({}, {"Authorization": "Bearer cdz_abcdefgh_unknown"}):
            response = await client.get("/api/v1/jobs", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="cadenza"'
