"""Helpers for the browser tests: the REST API of the live server, as a script uses it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from cadenza.testing.live import LiveServer


def call(
    server: LiveServer,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    cookie: str | None = None,
) -> tuple[int, Any]:
    """``(status, JSON body)`` of ``method /api/v1{path}`` as the admin key (or ``key``,
    or a session ``cookie``)."""
    headers = {"Content-Type": "application/json"}
    if cookie is not None:
        headers["Cookie"] = cookie
    else:
        headers["Authorization"] = f"Bearer {key or server.api_key}"
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, json.loads(refused.read() or b"null")


def add_endpoint(server: LiveServer, url: str, every: float, name: str = "api-made") -> str:
    """A new job with one endpoint calling ``url`` every ``every`` seconds; its id."""
    status, job = call(server, "POST", "/jobs", {"name": f"job-{name}"})
    assert status == 201, job
    body = {"name": name, "request": {"url": url}, "baseline": {"interval_seconds": every}}
    status, endpoint = call(server, "POST", f"/jobs/{job['id']}/endpoints", body)
    assert status == 201, endpoint
    return str(endpoint["id"])
