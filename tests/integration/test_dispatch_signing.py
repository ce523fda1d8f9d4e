"""Signed requests, verified by the receiving server with ``signing.verify``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cadenza.domain.model import Body, BodyKind, RunStatus

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_egress")]

SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NEW_KEY = "whsec-new-0123456789"
OLD_KEY = "whsec-old-9876543210"


def _signed_post(endpoint_for, http_target):
    return endpoint_for(
        http_target.url("/signed?tenant=1"), "POST", body=Body(BodyKind.JSON, json={"n": 1})
    )


async def test_a_signed_request_is_verified_by_the_receiver(
    http_target, endpoint_for, make_dispatcher
):
    http_target.signing_keys = [NEW_KEY]
    dispatcher = make_dispatcher(signing_keys=[NEW_KEY])

    result = await dispatcher.dispatch(_signed_post(endpoint_for, http_target), SLOT)

    assert result.status is RunStatus.SUCCESS, result.error
    header = http_target.received[0].headers["Cadenza-Signature"]
    assert header.startswith("t=")
    assert header.count("v1=") == 1


@pytest.mark.parametrize("receiver_key", [NEW_KEY, OLD_KEY])
async def test_during_rotation_a_receiver_with_either_key_verifies(
    receiver_key, http_target, endpoint_for, make_dispatcher
):
    http_target.signing_keys = [receiver_key]
    dispatcher = make_dispatcher(signing_keys=[NEW_KEY, OLD_KEY])

    result = await dispatcher.dispatch(_signed_post(endpoint_for, http_target), SLOT)

    assert result.status is RunStatus.SUCCESS, result.error
    assert http_target.received[0].headers["Cadenza-Signature"].count("v1=") == 2


async def test_a_receiver_with_an_unknown_key_rejects_the_request(
    http_target, endpoint_for, make_dispatcher
):
    http_target.signing_keys = ["some-other-key"]
    dispatcher = make_dispatcher(signing_keys=[NEW_KEY, OLD_KEY])

    result = await dispatcher.dispatch(_signed_post(endpoint_for, http_target), SLOT)

    assert result.status is RunStatus.FAILURE
    assert result.http_status == 401


async def test_each_redirect_hop_is_signed_for_its_own_method_and_url(
    http_target, endpoint_for, make_dispatcher
):
    http_target.signing_keys = [NEW_KEY]
    endpoint = endpoint_for(
        http_target.url("/redirect?to=/signed&code=303"), "POST", body=Body(BodyKind.TEXT, text="x")
    )

    result = await make_dispatcher(signing_keys=[NEW_KEY]).dispatch(endpoint, SLOT)

    assert result.status is RunStatus.SUCCESS, result.error
    assert http_target.received[-1].method == "GET"
