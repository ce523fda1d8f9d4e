"""Bad input fails at construction with a typed error, a readable message and a field.

Each case checks the exact class (surfaces map classes, never message text), that
``field`` names the offending input, and that the message names the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from domain_builders import T0, make_endpoint, make_job

from cadenza.domain import errors
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.limits import MAX_URL_LENGTH
from cadenza.domain.model import (
    Guardrails,
    Header,
    IntervalHint,
    Method,
    Request,
    RetryPolicy,
)
from cadenza.domain.schedule import CronSchedule, IntervalSchedule

CASES = [
    pytest.param(
        lambda: CronSchedule("every five minutes"),
        errors.InvalidCron,
        "baseline.cron",
        ["'every five minutes'", "Wrong number of fields"],
        id="a cron expression that is not cron is an invalid cron",
    ),
    pytest.param(
        lambda: CronSchedule("61 * * * *"),
        errors.InvalidCron,
        "baseline.cron",
        ["'61 * * * *'", "minute"],
        id="a minute of 61 is an invalid cron that names the minute",
    ),
    pytest.param(
        lambda: CronSchedule("0 0 30 2 *"),
        errors.InvalidCron,
        "baseline.cron",
        ["day-of-month"],
        id="the 30th of February is an invalid cron",
    ),
    pytest.param(
        lambda: CronSchedule("@reboot"),
        errors.InvalidCron,
        "baseline.cron",
        ["'@reboot'"],
        id="an unsupported macro is an invalid cron",
    ),
    pytest.param(
        lambda: CronSchedule("0 9 * * *", "Mars/Olympus_Mons"),
        errors.UnknownTimezone,
        "baseline.timezone",
        ["'Mars/Olympus_Mons'", "IANA"],
        id="a made-up zone is an unknown time zone",
    ),
    pytest.param(
        lambda: CronSchedule("0 9 * * *", "../../etc/passwd"),
        errors.UnknownTimezone,
        "baseline.timezone",
        ["'../../etc/passwd'"],
        id="a path instead of a zone is an unknown time zone",
    ),
    pytest.param(
        lambda: CronSchedule("0 9 * * *", ""),
        errors.UnknownTimezone,
        "baseline.timezone",
        ["''"],
        id="an empty zone is an unknown time zone",
    ),
    pytest.param(
        lambda: IntervalSchedule(timedelta(milliseconds=500)),
        errors.InvalidInterval,
        "baseline.interval_seconds",
        ["between 1 s and 400 days", "got 0.5 s"],
        id="an interval of half a second is too short",
    ),
    pytest.param(
        lambda: IntervalSchedule(timedelta(days=401)),
        errors.InvalidInterval,
        "baseline.interval_seconds",
        ["400 days"],
        id="an interval of 401 days is too long",
    ),
    pytest.param(
        lambda: IntervalHint(timedelta(milliseconds=10), T0),
        errors.InvalidInterval,
        "interval_seconds",
        ["Hint interval", "1 s"],
        id="an interval hint under one second is too short",
    ),
    pytest.param(
        lambda: Guardrails(min_interval=timedelta(milliseconds=10)),
        errors.InvalidInterval,
        "min_interval_seconds",
        ["min_interval", "1 s"],
        id="a minimum interval under one second is too short",
    ),
    pytest.param(
        lambda: Guardrails(timedelta(hours=2), timedelta(hours=1)),
        errors.GuardrailsInverted,
        "min_interval_seconds",
        ["7200 s", "3600 s", "greater than"],
        id="a minimum above the maximum is inverted guardrails",
    ),
    pytest.param(
        lambda: Request(Method.GET, "ftp://example.com/file"),
        errors.InvalidUrl,
        "request.url",
        ["'ftp://example.com/file'", "http:// or https://"],
        id="an ftp URL is not an http URL",
    ),
    pytest.param(
        lambda: Request(Method.GET, "example.com/health"),
        errors.InvalidUrl,
        "request.url",
        ["absolute"],
        id="a URL without a scheme is not absolute",
    ),
    pytest.param(
        lambda: Request(Method.GET, "https://"),
        errors.InvalidUrl,
        "request.url",
        ["host"],
        id="a URL without a host is refused",
    ),
    pytest.param(
        lambda: Request(Method.GET, "javascript:alert(1)"),
        errors.InvalidUrl,
        "request.url",
        ["http:// or https://"],
        id="a javascript URL is refused",
    ),
    pytest.param(
        lambda: Request(Method.GET, "https://example.com:99999/"),
        errors.InvalidUrl,
        "request.url",
        ["malformed", "out of range"],
        id="a port out of range makes the URL malformed",
    ),
    pytest.param(
        lambda: Request(Method.GET, "https://user:secret@example.com/"),
        errors.InvalidUrl,
        "request.url",
        ["secret header"],
        id="credentials in a URL are refused",
    ),
    pytest.param(
        lambda: Request(Method.GET, "https://example.com/" + "a" * MAX_URL_LENGTH),
        errors.InvalidUrl,
        "request.url",
        [f"{MAX_URL_LENGTH} characters"],
        id="an overlong URL is refused",
    ),
    pytest.param(
        lambda: Method.parse("TRACE"),
        errors.UnsupportedMethod,
        "request.method",
        ["'TRACE'", "GET, HEAD, POST, PUT, PATCH, DELETE"],
        id="TRACE is an unsupported method that lists the supported ones",
    ),
    pytest.param(
        lambda: Request("CONNECT", "https://example.com/"),  # type: ignore[arg-type]
        errors.UnsupportedMethod,
        "request.method",
        ["'CONNECT'"],
        id="a request built with an unsupported method string is refused",
    ),
    pytest.param(
        lambda: Header("X Bad", "1"),
        errors.ValidationError,
        "request.headers",
        ["'X Bad'"],
        id="a header name with a space is refused",
    ),
    pytest.param(
        lambda: Header("X-Ok", "a\r\nInjected: 1"),
        errors.ValidationError,
        "request.headers",
        ["line break"],
        id="a header value with a line break is refused",
    ),
    pytest.param(
        lambda: Request(Method.GET, "https://example.com/", timeout=timedelta(0)),
        errors.ValidationError,
        "request.timeout_seconds",
        ["timeout"],
        id="a zero timeout is refused",
    ),
    pytest.param(
        lambda: Request(Method.GET, "https://example.com/", expected_status=frozenset({700})),
        errors.ValidationError,
        "request.expected_status",
        ["between 100 and 599"],
        id="an expected status outside HTTP is refused",
    ),
    pytest.param(
        lambda: RetryPolicy(max_attempts=0),
        errors.ValidationError,
        "retry.max_attempts",
        ["max_attempts"],
        id="zero attempts is refused",
    ),
    pytest.param(
        lambda: make_endpoint(jitter=timedelta(hours=2)),
        errors.ValidationError,
        "jitter_seconds",
        ["jitter"],
        id="a jitter over one hour is refused",
    ),
    pytest.param(
        lambda: make_endpoint(name="   "),
        errors.ValidationError,
        "name",
        ["name"],
        id="a blank endpoint name is refused",
    ),
    pytest.param(
        lambda: make_job(name=""),
        errors.ValidationError,
        "name",
        ["name"],
        id="an empty job name is refused",
    ),
    pytest.param(
        lambda: Comparison(Op.EQ, 1, json_pointer="status"),
        errors.ValidationError,
        "json_pointer",
        ["'status'", "start with '/'"],
        id="a JSON pointer without a leading slash is refused",
    ),
]


@pytest.mark.parametrize(("build", "error", "field", "phrases"), CASES)
def test_bad_input_is_refused_with_a_typed_error(
    build: Callable[[], object], error: type[errors.ValidationError], field: str, phrases: list[str]
) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        build()
    assert type(raised.value) is error
    assert raised.value.field == field
    for phrase in phrases:
        assert phrase in raised.value.message
    assert str(raised.value) == raised.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com:8443/path?q=1#frag",
        "https://[2001:db8::1]/health",
        "HTTPS://EXAMPLE.COM/",
    ],
)
def test_absolute_http_and_https_urls_are_accepted(url: str) -> None:
    assert Request(Method.GET, url).url == url


def test_a_method_is_parsed_whatever_its_case() -> None:
    assert Method.parse("patch") is Method.PATCH
    assert Request("post", "https://example.com/").method is Method.POST  # type: ignore[arg-type]


def test_equal_guardrails_are_allowed() -> None:
    rails = Guardrails(timedelta(minutes=5), timedelta(minutes=5))
    assert rails.min_interval == rails.max_interval


def test_each_validation_error_has_its_own_stable_code() -> None:
    classes = [
        errors.InvalidCron,
        errors.UnknownTimezone,
        errors.InvalidInterval,
        errors.GuardrailsInverted,
        errors.InvalidUrl,
        errors.UnsupportedMethod,
    ]
    codes = [cls.code for cls in classes]
    assert len(set(codes)) == len(codes)
    assert all(issubclass(cls, errors.ValidationError) for cls in classes)
