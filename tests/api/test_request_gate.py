"""What every request passes first: authentication before its body is read, a cap on
the body, no repeated JSON keys, and no idle event stream on ``GET /mcp``."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from api_kit import Tenant, make_job_and_endpoint
from fastapi import FastAPI

from cadenza.actions.base import Services
from cadenza.api import create_app
from cadenza.config import Settings
from cadenza.mcp.http import mount_mcp

pytestmark = pytest.mark.anyio
CAP = 4096


class Exchange:
    """One request driven straight through the ASGI app, counting the body bytes the
    app pulls and keeping what it sends back."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.pulled = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        if not self._chunks:
            return {"type": "http.disconnect"}
        chunk = self._chunks.pop(0)
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self._chunks)}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def json(self) -> Any:
        return json.loads(self.body)


async def drive(
    app: FastAPI,
    method: str,
    path: str,
    chunks: list[bytes],
    headers: dict[str, str],
    *,
    declare_length: bool = True,
) -> Exchange:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    size = sum(len(c) for c in chunks)
    raw.append(
        (b"content-length", str(size).encode())
        if declare_length
        else (b"transfer-encoding", b"chunked")
    )
    raw.append((b"content-type", b"application/json"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    exchange = Exchange(list(chunks))
    await app(scope, exchange.receive, exchange.send)
    return exchange


@pytest.fixture
def capped(services: Services) -> FastAPI:
    app = create_app(services, Settings(rate_limit_per_minute=1_000_000, max_body_bytes=CAP))
    mount_mcp(app, services)
    return app


def big_json(size: int) -> bytes:
    return json.dumps({"name": "x" * size}).encode()


async def test_a_large_body_without_a_key_is_refused_unread(capped: FastAPI) -> None:
    body = big_json(3 * CAP)
    exchange = await drive(capped, "POST", "/api/v1/jobs", [body[:1000], body[1000:]], {})
    assert exchange.status == 401
    assert exchange.pulled == 0
    assert exchange.headers["www-authenticate"] == 'Bearer realm="cadenza"'


async def test_a_declared_length_above_the_cap_is_a_413_unread(
    capped: FastAPI, alice: Tenant
) -> None:
    body = big_json(3 * CAP)
    exchange = await drive(capped, "POST", "/api/v1/jobs", [body], alice.headers)
    assert exchange.status == 413
    assert exchange.pulled == 0
    assert exchange.json()["code"] == "payload_too_large"


async def test_a_streamed_body_is_cut_off_at_the_cap(capped: FastAPI, alice: Tenant) -> None:
    body = big_json(20 * CAP)
    chunks = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    exchange = await drive(
        capped, "POST", "/api/v1/jobs", chunks, alice.headers, declare_length=False
    )
    assert exchange.status == 413
    assert exchange.pulled <= CAP + 1024


async def test_other_paths_are_capped_too(capped: FastAPI, alice: Tenant) -> None:
    body = big_json(3 * CAP)
    exchange = await drive(capped, "POST", "/mcp", [body], alice.headers)
    assert exchange.status == 413
    assert exchange.pulled == 0


async def test_a_body_under_the_cap_still_works(capped: FastAPI, alice: Tenant) -> None:
    exchange = await drive(capped, "POST", "/api/v1/jobs", [big_json(100)], alice.headers)
    assert exchange.status == 201, exchange.body


async def test_the_sign_in_route_needs_no_key_but_is_capped(capped: FastAPI) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * (2 * CAP)}).encode()
    exchange = await drive(capped, "POST", "/api/v1/session", [body], {})
    assert exchange.status == 413


async def test_a_repeated_json_key_is_a_422_naming_it(
    client: httpx2.AsyncClient, alice: Tenant
) -> None:
    body = b'{"name": "first", "description": "d", "name": "second"}'
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/api/v1/jobs", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    assert "'name'" in response.json()["errors"][0]["message"]
    listed = await client.get("/api/v1/jobs", headers=alice.headers)
    assert listed.json()["items"] == []
    job_id, _ = await make_job_and_endpoint(client, alice)
    nested = (
        b'{"name": "e", "baseline": {"interval_seconds": 60}, "request": '
        b'{"url": "https://example.com/", "body": {"json": {"a": 1, "a": 2}}}}'
    )
    response = await client.post(
        f"/api/v1/jobs/{job_id}/endpoints", content=nested, headers=headers
    )
    assert response.status_code == 422
    assert "'a'" in response.json()["errors"][0]["message"]


async def test_get_on_the_mcp_endpoint_is_refused_instead_of_held_open(
    services: Services, alice: Tenant
) -> None:
    app = create_app(services, Settings())
    mount_mcp(app, services)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {**alice.headers, "Accept": "text/event-stream"}
        response = await client.get("/mcp", headers=headers, timeout=10)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
