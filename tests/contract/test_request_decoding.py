"""Stored requests decode to exactly what was stored, whatever their URL or layout."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store.documents import ConfigCodec
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import Body, BodyKind, Header, Method, Request, RetryPolicy


@pytest.fixture
def codec() -> ConfigCodec:
    return ConfigCodec(FernetSecretBox(FernetSecretBox.generate_key()))


_URLS = [
    "https://example.com/health",
    'https://example.com/q?a="quoted"&b=\\back',
    "https://exämple.com/ünïcode/\u2603",
    "https://example.com/path/with%20escapes/and/slashes/",
    'https://example.com/","url":"https://evil.example.com/',
]

_SHAPES = [
    Request(Method.GET, "https://example.com/"),
    Request(
        Method.POST,
        "https://example.com/",
        headers=(Header("X-Plain", "1"), Header("Authorization", "Bearer s3cret", secret=True)),
        body=Body(BodyKind.JSON, {"url": "not this one", "n": [1, 2]}),
        timeout=timedelta(seconds=12.5),
        expected_status=frozenset({200, 201, 204}),
        assertion=Comparison(Op.EQ, "ok", "/status"),
        retry=RetryPolicy(3, timedelta(seconds=2), timedelta(seconds=20), frozenset({503})),
    ),
    Request(Method.PUT, "https://example.com/", body=Body(BodyKind.TEXT, text='"url":"x"')),
]


@pytest.mark.parametrize("shape", _SHAPES)
def test_requests_round_trip_whatever_their_url(codec: ConfigCodec, shape: Request) -> None:
    for url in _URLS:
        request = Request(
            shape.method,
            url,
            shape.headers,
            shape.body,
            shape.timeout,
            shape.expected_status,
            shape.assertion,
            shape.retry,
        )
        assert codec.request(codec.request_text(request)) == request


def test_text_in_another_layout_is_decoded_in_full(codec: ConfigCodec) -> None:
    request = _SHAPES[1]
    document = json.loads(codec.request_text(request))
    reordered = json.dumps({"url": document.pop("url"), **document})
    assert codec.request(reordered) == request
    spaced = json.dumps(json.loads(codec.request_text(request)))
    assert codec.request(spaced) == request
