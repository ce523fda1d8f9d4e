"""Response capture stays bounded, and secret header values never leak into logs,
errors or captures while still reaching the http_target."""

from __future__ import annotations

import logging
import socket
import tracemalloc
from datetime import UTC, datetime

import pytest
import structlog

from cadenza.domain.model import Header, RunStatus

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_egress")]

SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
LIMIT = 64 * 1024
SECRET_TOKEN = "sk-live-TOPSECRET-2f9c81"
SECRET_KEY = "apikey-HUSH-77aa03"
SECRET_HEADERS = (
    Header("Authorization", f"Bearer {SECRET_TOKEN}", secret=True),
    Header("X-Api-Key", SECRET_KEY, secret=True),
)


@pytest.mark.parametrize("query", ["", "?chunked=1"])
async def test_a_huge_body_is_captured_truncated_with_bounded_memory(
    query, http_target, endpoint_for, make_dispatcher
):
    dispatcher = make_dispatcher(capture_bytes=LIMIT)
    tracemalloc.start()
    try:
        result = await dispatcher.dispatch(endpoint_for(http_target.url("/huge" + query)), SLOT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.status is RunStatus.SUCCESS
    assert result.response is not None
    assert len(result.response.body) == LIMIT
    assert result.response.truncated
    assert result.response.content_type == "application/octet-stream"
    if query:
        assert result.response.size == LIMIT  # no Content-Length: the bytes read
    else:
        assert result.response.size == 50 * 1024 * 1024  # from Content-Length
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while a 50 MB body streamed"
    # The client stopped reading: the server could not push the whole body.
    assert http_target.huge_bytes_sent < 40 * 1024 * 1024


async def test_a_compression_bomb_inflates_only_as_far_as_the_limit(
    http_target, endpoint_for, make_dispatcher
):
    dispatcher = make_dispatcher(capture_bytes=LIMIT)
    tracemalloc.start()
    try:
        result = await dispatcher.dispatch(endpoint_for(http_target.url("/bomb")), SLOT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.status is RunStatus.SUCCESS
    assert result.response is not None
    assert result.response.body == bytes(LIMIT)
    assert result.response.truncated
    assert result.response.size == LIMIT  # the encoded Content-Length is not the size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a 20 MB inflated body"


async def test_a_body_of_exactly_the_limit_is_not_truncated(
    http_target, endpoint_for, make_dispatcher
):
    result = await make_dispatcher(capture_bytes=5).dispatch(
        endpoint_for(http_target.url("/ok")), SLOT
    )

    assert result.response is not None
    assert (result.response.body, result.response.truncated) == (b"hello", False)


async def test_a_body_over_the_limit_keeps_its_first_bytes_and_full_size(
    http_target, endpoint_for, make_dispatcher
):
    result = await make_dispatcher(capture_bytes=3).dispatch(
        endpoint_for(http_target.url("/ok")), SLOT
    )

    assert result.response is not None
    assert result.response.body == b"hel"
    assert result.response.size == 5
    assert result.response.truncated


async def test_secret_headers_are_sent_but_never_logged_captured_or_in_errors(
    http_target, endpoint_for, make_dispatcher, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    dispatcher = make_dispatcher()
    echo = endpoint_for(http_target.url("/echo?status=500"), headers=SECRET_HEADERS)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        refused = endpoint_for(refused_url, headers=SECRET_HEADERS)
        with structlog.testing.capture_logs() as logs:
            echoed = await dispatcher.dispatch(echo, SLOT)
            failed = await dispatcher.dispatch(refused, SLOT)

    received = http_target.received[0].headers
    assert received["Authorization"] == f"Bearer {SECRET_TOKEN}"
    assert received["X-Api-Key"] == SECRET_KEY
    assert echoed.status is RunStatus.FAILURE
    assert failed.status is RunStatus.ERROR
    assert echoed.response is not None
    assert b"[redacted]" in echoed.response.body  # the http_target echoed them back
    leaks = [
        repr(logs),
        caplog.text,
        capsys.readouterr().out,
        echoed.error,
        failed.error,
        repr(echoed.response),
        repr(failed),
    ]
    for text in leaks:
        assert SECRET_TOKEN not in text
        assert SECRET_KEY not in text
    assert logs, "the dispatcher logs each attempt"


async def test_a_cross_origin_redirect_drops_secret_headers(
    http_target, endpoint_for, make_dispatcher
):
    port = http_target.base.rsplit(":", 1)[1]
    hop = f"http://localhost:{port}/echo"
    endpoint = endpoint_for(http_target.url(f"/redirect?to={hop}"), headers=SECRET_HEADERS)

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS, result.error
    first, final = http_target.received
    assert first.headers["X-Api-Key"] == SECRET_KEY
    assert "X-Api-Key" not in final.headers
    assert "Authorization" not in final.headers
    assert final.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]


async def test_a_same_origin_redirect_keeps_secret_headers(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/redirect?to=/echo"), headers=SECRET_HEADERS)

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS
    assert http_target.received[-1].headers["X-Api-Key"] == SECRET_KEY
