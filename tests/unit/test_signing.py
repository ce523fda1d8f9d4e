"""Cadenza-Signature: signing and verification, pure."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.adapters.http import signing

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
URL = "https://hooks.example.com/run?x=1"
BODY = b'{"n":1}'


def test_the_signature_is_hmac_sha256_over_time_method_url_and_body_digest():
    header = signing.sign(["k1"], "post", URL, BODY, T)

    digest = hashlib.sha256(BODY).hexdigest()
    expected = hmac.new(b"k1", f"{T}.POST.{URL}.{digest}".encode(), hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"


def test_two_active_keys_give_two_v1_entries_newest_first():
    header = signing.sign(["new", "old", "older"], "GET", URL, b"", T)

    parsed = signing.parse(header)
    assert parsed is not None
    timestamp, signatures = parsed
    assert timestamp == T
    assert len(signatures) == 2
    assert signing.verify(header, "GET", URL, b"", ["new"], NOW)
    assert signing.verify(header, "GET", URL, b"", ["old"], NOW)
    assert not signing.verify(header, "GET", URL, b"", ["older"], NOW)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", URL, BODY),
        ("POST", URL + "&y=2", BODY),
        ("POST", URL, b'{"n":2}'),
    ],
)
def test_any_change_to_the_request_breaks_the_signature(method, url, body):
    header = signing.sign(["k"], "POST", URL, BODY, T)

    assert signing.verify(header, "POST", URL, BODY, ["k"], NOW)
    assert not signing.verify(header, method, url, body, ["k"], NOW)


def test_stale_and_future_signatures_are_rejected():
    header = signing.sign(["k"], "GET", URL, b"", T)
    tolerance = timedelta(minutes=5)

    assert signing.verify(header, "GET", URL, b"", ["k"], NOW + tolerance, tolerance)
    assert not signing.verify(header, "GET", URL, b"", ["k"], NOW + tolerance * 2, tolerance)
    assert not signing.verify(header, "GET", URL, b"", ["k"], NOW - tolerance * 2, tolerance)


@pytest.mark.parametrize(
    "header",
    ["", "t=1", "v1=abc", f"t={T},t={T},v1=ab", "t=abc,v1=ab", "garbage", f"t={T};v1=ab"],
)
def test_malformed_headers_do_not_verify(header):
    assert not signing.verify(header, "GET", URL, b"", ["k"], NOW)


def test_unknown_schemes_are_ignored_for_forward_compatibility():
    header = signing.sign(["k"], "GET", URL, b"", T) + ",v2=future"

    assert signing.verify(header, "GET", URL, b"", ["k"], NOW)


def test_signing_without_a_key_is_a_programming_error():
    with pytest.raises(ValueError, match="at least one"):
        signing.sign(["", ""], "GET", URL, b"", T)
