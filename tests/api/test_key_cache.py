"""The per-process cache of API keys: fast, bounded, and never late on a revocation
made through this process; at most ``KEY_CACHE_TTL`` late on one made elsewhere."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx2
import pytest
from api_kit import Tenant, add_key

from cadenza.actions.base import Services
from cadenza.actions.identity import KEY_CACHE_TTL, KeyCache, authenticate_key
from cadenza.domain import errors
from cadenza.domain.identity import ApiKey, Scope
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio


def frozen(services: Services) -> FrozenClock:
    assert isinstance(services.clock, FrozenClock)
    return services.clock


def prefix_of(tenant: Tenant) -> str:
    return tenant.key.split("_")[1]


async def stored_key(services: Services, tenant: Tenant) -> ApiKey:
    async with services.store.transaction(readonly=True) as tx:
        key = await tx.find_api_key_by_prefix(prefix_of(tenant))
    assert key is not None
    return key


async def revoke_elsewhere(services: Services, tenant: Tenant) -> None:
    """Revoke as another process would: in the store, unseen by this process's cache."""
    key = await stored_key(services, tenant)
    async with services.store.transaction() as tx:
        await tx.update_api_key(replace(key, revoked_at=services.clock.now()))


async def test_a_key_revoked_by_another_process_is_refused_once_the_cache_ttl_passes(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200
    await revoke_elsewhere(services, alice)
    frozen(services).advance(KEY_CACHE_TTL - timedelta(seconds=1))
    assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200
    frozen(services).advance(timedelta(seconds=1))
    refused = await client.get("/api/v1/me", headers=alice.headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"


async def test_a_cached_key_stops_working_the_moment_it_expires(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    soon = KEY_CACHE_TTL / 2
    headers = await add_key(
        services, alice, frozenset({Scope.JOBS_READ}), expires_at=services.clock.now() + soon
    )
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    frozen(services).advance(soon)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_a_cached_key_is_checked_against_the_whole_secret_every_time(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200
    tampered = alice.key[:-1] + ("A" if alice.key[-1] != "A" else "B")
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401


async def test_writing_last_used_never_undoes_a_revocation_made_meanwhile(
    services: Services, alice: Tenant
) -> None:
    # A cache that outlives the last-used granularity: the copy it holds is unrevoked
    # when the request decides to write last_used_at.
    cache = KeyCache(services.clock, ttl=timedelta(hours=1))
    store, clock = services.store, services.clock
    await authenticate_key(store, clock, services.keyring, alice.key, cache)
    await revoke_elsewhere(services, alice)
    frozen(services).advance(timedelta(minutes=2))
    with pytest.raises(errors.AuthenticationFailed):
        await authenticate_key(store, clock, services.keyring, alice.key, cache)
    assert (await stored_key(services, alice)).revoked_at is not None


async def test_a_read_that_began_before_a_revocation_cannot_cache_the_old_key(
    services: Services, alice: Tenant
) -> None:
    cache = KeyCache(services.clock)
    before = cache.generation
    seen = await stored_key(services, alice)
    cache.forget(seen.prefix)  # a revocation through this process, committed meanwhile
    cache.put(seen, before)
    assert cache.get(seen.prefix) is None
    cache.put(seen, cache.generation)
    assert cache.get(seen.prefix) == seen


async def test_the_cache_holds_at_most_its_size_dropping_the_oldest_first(
    services: Services, alice: Tenant
) -> None:
    cache = KeyCache(services.clock, size=2)
    key = await stored_key(services, alice)
    for prefix in ("aaaaaaaa", "bbbbbbbb", "cccccccc"):
        cache.put(replace(key, prefix=prefix), cache.generation)
    assert cache.get("aaaaaaaa") is None
    assert cache.get("bbbbbbbb") is not None
    assert cache.get("cccccccc") is not None
