"""Pure rules of the dispatcher: backoff, Retry-After, verdict texts, redirect
rewriting, redaction, and the FakeDispatcher's scripting."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from yarl import URL

from cadenza.adapters.http.dispatcher import backoff_delay
from cadenza.adapters.http.outbound import Template, first_hop
from cadenza.adapters.http.redaction import Redactor
from cadenza.adapters.http.response import (
    describe_assertion,
    describe_statuses,
    parse_retry_after,
)
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import (
    Body,
    BodyKind,
    Endpoint,
    Header,
    Method,
    Request,
    RetryPolicy,
    RunStatus,
)
from cadenza.domain.schedule import IntervalSchedule
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher, Outcome

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=5, backoff=timedelta(seconds=1), max_backoff=timedelta(seconds=10)
)


def _endpoint(url: str = "https://a.example/x", **request) -> Endpoint:
    return Endpoint(
        id="ep-9",
        job_id="job-1",
        tenant_id="t-1",
        name="e",
        request=Request(Method(request.pop("method", "GET")), url, **request),
        baseline=IntervalSchedule(timedelta(minutes=1)),
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10)])
def test_backoff_doubles_up_to_the_cap(attempt, seconds):
    assert backoff_delay(POLICY, attempt, None) == seconds


def test_retry_after_lengthens_the_delay_but_never_past_the_cap():
    assert backoff_delay(POLICY, 1, timedelta(seconds=3)) == 3
    assert backoff_delay(POLICY, 3, timedelta(seconds=1)) == 4
    assert backoff_delay(POLICY, 1, timedelta(hours=1)) == 10


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("120", NOW) == timedelta(seconds=120)
    assert parse_retry_after("Mon, 05 Jan 2026 12:00:30 GMT", NOW) == timedelta(seconds=30)
    assert parse_retry_after("Mon, 05 Jan 2026 11:00:00 GMT", NOW) == timedelta(0)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_expected_statuses_read_compactly():
    assert describe_statuses(frozenset(range(200, 300))) == "2xx"
    assert describe_statuses(frozenset({200, 201, 202, 204, 301})) == "200-202, 204, 301"


def test_assertions_read_as_a_person_would_say_them():
    assert describe_assertion(Comparison(Op.CONTAINS, "ok")) == "body contains 'ok'"
    assert describe_assertion(Comparison(Op.EXISTS, json_pointer="/a")) == "JSON /a exists"


def test_the_first_hop_carries_the_fixed_headers_and_encoded_body():
    endpoint = _endpoint(
        method="POST",
        headers=(Header("Idempotency-Key", "mine"), Header("User-Agent", "custom")),
        body=Body(BodyKind.TEXT, text="hi"),
    )

    hop = first_hop(endpoint, "ep-9:slot")

    headers = hop.header_map()
    assert headers.getall("Idempotency-Key") == ["ep-9:slot"]
    assert headers["User-Agent"] == "custom"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert hop.body == b"hi"


def test_each_run_gets_its_own_copy_of_the_shared_template_headers():
    template = Template.of(_endpoint(headers=(Header("X-Plain", "1"),)).request)

    first = template.headers_for("ep-9:slot-1")
    second = template.headers_for("ep-9:slot-2")

    assert first.getall("Idempotency-Key") == ["ep-9:slot-1"]
    assert second.getall("Idempotency-Key") == ["ep-9:slot-2"]
    assert "Idempotency-Key" not in template.header_map
    assert first["X-Plain"] == second["X-Plain"] == "1"


def test_a_303_becomes_a_bodyless_get_and_307_keeps_everything():
    hop = first_hop(_endpoint(method="POST", body=Body(BodyKind.JSON, json={"a": 1})), "k")

    see_other = hop.redirected(303, URL("https://a.example/next"))
    temporary = hop.redirected(307, URL("https://a.example/next"))

    assert (see_other.method, see_other.body) == ("GET", b"")
    assert "Content-Type" not in see_other.header_map()
    assert (temporary.method, temporary.body) == ("POST", b'{"a":1}')


def test_a_cross_origin_redirect_drops_secrets_and_credentials():
    endpoint = _endpoint(
        headers=(
            Header("X-Token", "secret-value", secret=True),
            Header("Authorization", "Basic abc"),
            Header("X-Plain", "1"),
        )
    )
    hop = first_hop(endpoint, "k")

    same = hop.redirected(302, URL("https://a.example/other")).header_map()
    other = hop.redirected(302, URL("https://b.example/")).header_map()

    assert "X-Token" in same
    assert "Authorization" in same
    assert "X-Token" not in other
    assert "Authorization" not in other
    assert other["X-Plain"] == "1"


def test_the_redactor_hides_secrets_but_not_short_values():
    redactor = Redactor(["hunter22", "ab"])

    assert redactor.text("pw=hunter22 ab") == "pw=[redacted] ab"
    assert redactor.data(b"hunter22") == b"[redacted]"


@pytest.mark.anyio
async def test_the_fake_plays_scripts_by_id_then_url_and_repeats_the_last():
    clock = FrozenClock(NOW)
    fake = FakeDispatcher(clock)
    endpoint = _endpoint()
    fake.script(endpoint.request.url, Outcome(RunStatus.TIMEOUT, None))
    fake.script(
        "ep-9",
        Outcome(RunStatus.FAILURE, 503, duration=timedelta(seconds=2)),
        Outcome(RunStatus.SUCCESS, 200),
    )

    first = await fake.dispatch(endpoint, NOW)
    second = await fake.dispatch(endpoint, NOW)
    third = await fake.dispatch(endpoint, NOW)
    by_url = await fake.dispatch(replace(endpoint, id="other"), NOW)

    assert [r.status for r in (first, second, third)] == [
        RunStatus.FAILURE,
        RunStatus.SUCCESS,
        RunStatus.SUCCESS,
    ]
    assert first.finished_at - first.started_at == timedelta(seconds=2)
    assert by_url.status is RunStatus.TIMEOUT
    assert len(fake.calls) == 4
    assert clock.now() == NOW + timedelta(seconds=2)
