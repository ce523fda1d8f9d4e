"""Users, sessions, API keys, rate limits and the HTTP hygiene around them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import httpx2
import pytest
from api_kit import PASSWORD, SECRET, Tenant, add_key
from fastapi import FastAPI

from cadenza.actions.base import Services
from cadenza.actions.identity import authenticate_password, create_user, ensure_admin
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.domain import errors
from cadenza.domain.identity import KeyKind, Scope
from cadenza.keyring import hkdf_sha256
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio


def frozen(services: Services) -> FrozenClock:
    assert isinstance(services.clock, FrozenClock)
    return services.clock


async def test_a_user_is_created_once_per_email_and_signs_in_with_the_password(
    services: Services,
) -> None:
    user = await create_user(
        services.store, services.clock, "Ada@Example.com", "a long passphrase", is_admin=False
    )
    assert user.email == "ada@example.com"
    assert user.tenant_id == user.id
    assert user.password_hash.startswith("$argon2")
    signed_in = await authenticate_password(services.store, "ada@example.com", "a long passphrase")
    assert signed_in.id == user.id
    with pytest.raises(errors.AuthenticationFailed):
        await authenticate_password(services.store, "ada@example.com", "wrong passphrase")
    with pytest.raises(errors.DuplicateName):
        await create_user(
            services.store, services.clock, "ada@example.com", "x" * 12, is_admin=False
        )
    with pytest.raises(errors.ValidationError):
        await create_user(
            services.store, services.clock, "new@example.com", "short", is_admin=False
        )


async def test_ensure_admin_creates_an_admin_and_a_working_key_only_on_first_start(
    services: Services, client: httpx2.AsyncClient
) -> None:
    created = await ensure_admin(
        services.store, services.clock, services.keyring, "root@example.com", ""
    )
    assert created is not None
    user, password, key = created
    assert user.is_admin
    assert password is not None
    assert len(password) >= 16
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["scopes"] == ["admin"]
    again = await ensure_admin(
        services.store, services.clock, services.keyring, "x@example.com", ""
    )
    assert again is None


async def test_an_api_key_reads_cdz_prefix_secret_and_only_its_hmac_digest_is_stored(
    services: Services, alice: Tenant
) -> None:
    mark, prefix, secret = alice.key.split("_", 2)
    assert mark == "cdz"
    assert len(prefix) == 8
    assert len(secret) >= 32
    async with services.store.transaction(readonly=True) as tx:
        stored = await tx.find_api_key_by_prefix(prefix)
    assert stored is not None
    api_keys_key = hkdf_sha256(SECRET, b"cadenza/api-key-digests", salt=b"cadenza server secret v1")
    mac = hmac.new(api_keys_key, alice.key.encode(), hashlib.sha256).hexdigest()
    assert stored.digest == f"{services.keyring.key_id}:{mac}"
    assert secret not in repr(stored)


async def test_a_created_key_is_shown_once_and_listed_by_prefix_only(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    created = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["jobs:read"]}, headers=alice.headers
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith(f"cdz_{created.json()['key']['prefix']}_")
    listed = await client.get("/api/v1/api-keys", headers=alice.headers)
    assert secret not in listed.text
    assert created.json()["key"]["prefix"] in listed.text


async def test_revoked_and_expired_keys_are_refused_with_401(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    created = await client.post(
        "/api/v1/api-keys", json={"name": "tmp", "scopes": ["jobs:read"]}, headers=alice.headers
    )
    headers = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert (await client.get("/api/v1/jobs", headers=headers)).status_code == 200
    key_id = created.json()["key"]["id"]
    revoked = await client.delete(f"/api/v1/api-keys/{key_id}", headers=alice.headers)
    assert revoked.json()["revoked_at"] is not None
    refused = await client.get("/api/v1/jobs", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"
    expiring = await add_key(
        services,
        alice,
        frozenset({Scope.JOBS_READ}),
        expires_at=services.clock.now() + timedelta(minutes=5),
    )
    assert (await client.get("/api/v1/jobs", headers=expiring)).status_code == 200
    frozen(services).advance(timedelta(minutes=6))
    assert (await client.get("/api/v1/jobs", headers=expiring)).status_code == 401


async def test_a_tampered_or_unknown_key_is_refused(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    tampered = alice.key[:-2] + ("aa" if not alice.key.endswith("aa") else "bb")
    for token in (tampered, "cdz_nothere1_secret", "not-a-key"):
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


async def test_last_used_is_written_at_most_once_a_minute(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    async def last_used() -> str | None:
        listed = await client.get("/api/v1/api-keys", headers=alice.headers)
        first = next(k for k in listed.json()["items"] if k["name"] == "k")
        return first["last_used_at"]  # type: ignore[no-any-return]

    first = await last_used()
    frozen(services).advance(timedelta(seconds=30))
    assert await last_used() == first
    frozen(services).advance(timedelta(seconds=31))
    assert await last_used() != first


async def test_a_key_cannot_grant_scopes_its_holder_lacks(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    keys_admin = await add_key(services, alice, frozenset({Scope.KEYS_ADMIN}))
    response = await client.post(
        "/api/v1/api-keys", json={"name": "up", "scopes": ["admin"]}, headers=keys_admin
    )
    assert response.status_code == 403


async def test_changes_made_with_an_agent_key_are_audited_as_the_agent(
    client: httpx2.AsyncClient, services: Services, alice: Tenant
) -> None:
    agent = await add_key(services, alice, frozenset({Scope.ADMIN}), kind=KeyKind.AGENT)
    await client.post("/api/v1/jobs", json={"name": "by-agent", "reason": "why"}, headers=agent)
    audit = await client.get("/api/v1/audit", headers=alice.headers)
    event = next(e for e in audit.json()["items"] if e["action"] == "create_job")
    assert event["actor"]["kind"] == "agent"
    assert event["reason"] == "why"


async def test_a_session_signs_in_with_email_and_password_and_signs_out(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    response = await client.post(
        "/api/v1/session", json={"email": alice.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    me = await client.get("/api/v1/me")
    assert me.json()["actor"]["kind"] == "user"
    assert me.json()["tenant_id"] == alice.tenant_id
    created = await client.post("/api/v1/jobs", json={"name": "from the dashboard"})
    assert created.status_code == 201
    cross = await client.post(
        "/api/v1/jobs", json={"name": "csrf"}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    out = await client.delete("/api/v1/session")
    assert out.status_code == 204
    client.cookies.clear()
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_wrong_password_or_forged_cookie_gets_401(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    wrong = await client.post("/api/v1/session", json={"email": alice.email, "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    client.cookies.set("cadenza_session", f"{alice.tenant_id}.9999999999.{'0' * 64}")
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_caller_over_its_rate_gets_429_with_retry_after(
    services: Services, alice: Tenant
) -> None:
    app: FastAPI = create_app(services, Settings(rate_limit_per_minute=3))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        statuses = [(await client.get("/api/v1/me", headers=alice.headers)) for _ in range(4)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429]
        assert statuses[-1].json()["code"] == "rate_limited"
        assert int(statuses[-1].headers["retry-after"]) >= 1
        frozen(services).advance(timedelta(seconds=20))
        assert (await client.get("/api/v1/me", headers=alice.headers)).status_code == 200


async def test_request_ids_are_echoed_or_generated_and_security_headers_are_set(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    echoed = await client.get("/api/v1/me", headers={**alice.headers, "X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/api/v1/me", headers={**alice.headers, "X-Request-ID": "bad id!"})
    assert generated.headers["x-request-id"] not in ("", "bad id!")
    for name, value in {
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "cache-control": "no-store",
    }.items():
        assert echoed.headers[name] == value
    assert "frame-ancestors 'none'" in echoed.headers["content-security-policy"]


async def test_problems_carry_the_request_id_and_unknown_routes_are_problems_too(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    missing = await client.get(
        "/api/v1/jobs/job_nope", headers={**alice.headers, "X-Request-ID": "r1"}
    )
    assert missing.json()["request_id"] == "r1"
    assert missing.json()["type"].endswith("job_not_found")
    route = await client.get("/api/v1/nowhere", headers=alice.headers)
    assert route.status_code == 404
    assert route.headers["content-type"] == "application/problem+json"
