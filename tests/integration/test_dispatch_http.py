"""HttpDispatcher against a real aiohttp server on 127.0.0.1: verdicts, retries,
timeouts and what goes on the wire."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import Body, BodyKind, Header, RetryPolicy, RunStatus
from cadenza.testing import FrozenClock

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_egress")]

SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FAST_RETRY = RetryPolicy(max_attempts=3, backoff=timedelta(milliseconds=50))


async def test_an_expected_status_is_a_success_with_the_body_captured(
    http_target, endpoint_for, make_dispatcher
):
    dispatcher = make_dispatcher()

    result = await dispatcher.dispatch(endpoint_for(http_target.url("/ok")), SLOT)

    assert result.status is RunStatus.SUCCESS
    assert result.http_status == 200
    assert result.error == ""
    assert result.attempts == 1
    assert result.response is not None
    assert result.response.body == b"hello"
    assert result.response.size == 5
    assert not result.response.truncated
    assert result.response.content_type.startswith("text/plain")
    assert result.started_at <= result.finished_at


async def test_an_unexpected_status_is_a_failure_that_names_the_status(
    http_target, endpoint_for, make_dispatcher
):
    dispatcher = make_dispatcher()

    result = await dispatcher.dispatch(endpoint_for(http_target.url("/status/404")), SLOT)

    assert result.status is RunStatus.FAILURE
    assert result.http_status == 404
    assert result.error == "unexpected HTTP status 404 (expected 2xx)"
    assert result.response is not None
    assert result.response.body == b"status 404"


async def test_a_custom_expected_status_set_turns_that_status_into_a_success(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/status/404"), expected_status=frozenset({404, 410}))

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS


async def test_a_response_slower_than_the_timeout_is_a_timeout(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/sleep?s=5"), timeout=timedelta(milliseconds=300))

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.TIMEOUT
    assert result.error == "timed out after 0.3 s"
    assert result.http_status is None
    assert result.finished_at - result.started_at < timedelta(seconds=2)


async def test_a_body_that_stalls_mid_way_is_a_timeout(http_target, endpoint_for, make_dispatcher):
    endpoint = endpoint_for(http_target.url("/slow-body"), timeout=timedelta(milliseconds=300))

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.TIMEOUT
    assert http_target.hits["/slow-body"] == 1


async def test_retry_after_is_honoured_and_every_attempt_is_counted(
    http_target, endpoint_for, make_dispatcher
):
    clock = FrozenClock(SLOT)
    endpoint = endpoint_for(http_target.url("/flaky?retry_after=1"), retry=FAST_RETRY)

    result = await make_dispatcher(clock=clock).dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS
    assert result.attempts == 2
    assert http_target.hits["/flaky"] == 2
    assert result.retry_after == timedelta(seconds=1)
    # The backoff alone is 50 ms: only Retry-After explains a one-second pause.
    assert clock.now() - SLOT == timedelta(seconds=1)
    assert result.finished_at - result.started_at == timedelta(seconds=1)


async def test_a_retry_after_beyond_the_max_backoff_ends_the_run_instead_of_retrying_early(
    http_target, endpoint_for, make_dispatcher
):
    clock = FrozenClock(SLOT)
    policy = RetryPolicy(
        max_attempts=2, backoff=timedelta(milliseconds=10), max_backoff=timedelta(seconds=0.2)
    )
    endpoint = endpoint_for(http_target.url("/flaky?retry_after=3600"), retry=policy)

    result = await make_dispatcher(clock=clock).dispatch(endpoint, SLOT)

    # #16.4: the target asked for an hour; the next run waits for it (the governor).
    assert (result.status, result.http_status, result.attempts) == (RunStatus.FAILURE, 503, 1)
    assert clock.now() == SLOT
    assert http_target.hits["/flaky"] == 1
    assert result.retry_after == timedelta(hours=1)


async def test_backoff_waits_on_the_injected_clock(http_target, endpoint_for, make_dispatcher):
    clock = FrozenClock(SLOT)
    policy = RetryPolicy(max_attempts=2, max_backoff=timedelta(minutes=1))
    endpoint = endpoint_for(http_target.url("/flaky?retry_after=30"), retry=policy)

    result = await make_dispatcher(clock=clock).dispatch(endpoint, SLOT)

    assert result.attempts == 2
    assert clock.now() == SLOT + timedelta(seconds=30)  # no real half-minute passed
    assert result.started_at == SLOT
    assert result.finished_at == SLOT + timedelta(seconds=30)


async def test_retries_stop_at_max_attempts_and_report_the_last_failure(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/flaky?fail=10&retry_after=0"), retry=FAST_RETRY)

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.FAILURE
    assert result.http_status == 503
    assert result.attempts == 3
    assert http_target.hits["/flaky"] == 3


async def test_a_status_outside_retry_on_status_is_not_retried(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(http_target.url("/status/400"), retry=FAST_RETRY)

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.attempts == 1
    assert http_target.hits["/status/400"] == 1


async def test_a_failed_assertion_is_a_failure_that_says_which(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(
        http_target.url("/json"), assertion=Comparison(Op.EQ, "degraded", json_pointer="/status")
    )

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.FAILURE
    assert result.http_status == 200
    assert result.error == "response assertion failed: JSON /status eq 'degraded'"


async def test_a_holding_assertion_keeps_the_success(http_target, endpoint_for, make_dispatcher):
    endpoint = endpoint_for(
        http_target.url("/json"), assertion=Comparison(Op.GE, 3, json_pointer="/count")
    )

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS


async def test_a_refused_connection_is_an_error_retried_per_policy(endpoint_for, make_dispatcher):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        endpoint = endpoint_for(f"http://127.0.0.1:{port}/", retry=FAST_RETRY)

        result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.ERROR
    assert result.error.startswith(f"could not connect to 127.0.0.1:{port}")
    assert result.attempts == 3


async def test_an_unresolvable_name_is_an_error(endpoint_for, make_dispatcher):
    from cadenza.testing.dispatch import StaticResolver

    dispatcher = make_dispatcher(resolver=StaticResolver({}))

    result = await dispatcher.dispatch(endpoint_for("http://nowhere.test/"), SLOT)

    assert result.status is RunStatus.ERROR
    assert result.error.startswith("DNS lookup failed for nowhere.test")


async def test_the_request_carries_idempotency_key_user_agent_and_body(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(
        http_target.url("/echo"),
        "POST",
        headers=(Header("X-Trace", "abc"),),
        body=Body(BodyKind.JSON, json={"hello": "wörld"}),
    )

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS
    seen = http_target.received[0]
    assert seen.headers["Idempotency-Key"] == f"ep-1:{SLOT.isoformat()}"
    assert seen.headers["User-Agent"].startswith("Cadenza/")
    assert seen.headers["X-Trace"] == "abc"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {"hello": "wörld"}
    assert "Cadenza-Signature" not in seen.headers  # no keys configured


async def test_a_3xx_the_endpoint_expects_is_not_followed(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(
        http_target.url("/redirect?to=/ok&code=302"), expected_status=frozenset({302})
    )

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS
    assert result.http_status == 302
    assert http_target.hits["/ok"] == 0


async def test_a_303_after_a_post_becomes_a_get_without_body(
    http_target, endpoint_for, make_dispatcher
):
    endpoint = endpoint_for(
        http_target.url("/redirect?to=/echo&code=303"),
        "POST",
        body=Body(BodyKind.TEXT, text="data"),
    )

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS
    final = http_target.received[-1]
    assert (final.method, final.path, final.body) == ("GET", "/echo", b"")


async def test_a_307_repeats_the_method_and_body(http_target, endpoint_for, make_dispatcher):
    endpoint = endpoint_for(
        http_target.url("/redirect?to=/echo&code=307"), "PUT", body=Body(BodyKind.TEXT, text="data")
    )

    result = await make_dispatcher().dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS
    final = http_target.received[-1]
    assert (final.method, final.path, final.body) == ("PUT", "/echo", b"data")


async def test_a_redirect_loop_stops_after_the_hop_limit(
    http_target, endpoint_for, make_dispatcher
):
    result = await make_dispatcher(max_redirects=2).dispatch(
        endpoint_for(http_target.url("/loop")), SLOT
    )

    assert result.status is RunStatus.ERROR
    assert result.error == "stopped after 2 redirects"
    assert http_target.hits["/loop"] == 3
