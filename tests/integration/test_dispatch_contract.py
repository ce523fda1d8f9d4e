"""The Dispatcher port's contract, run against FakeDispatcher and HttpDispatcher (the
latter against the loopback server): the same scenarios give results of the same
shape, and neither raises for HTTP or network failures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.adapters.clock import SystemClock
from cadenza.domain.model import Endpoint, RunStatus
from cadenza.ports import Dispatcher, DispatchResult
from cadenza.testing.dispatch import FakeDispatcher, Outcome

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_egress")]

SLOT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(milliseconds=300)


@dataclass
class Subject:
    dispatcher: Dispatcher
    endpoint: Callable[[str], Endpoint]


def _scenarios(endpoint_for, http_target) -> dict[str, Endpoint]:
    return {
        "success": endpoint_for(http_target.url("/ok")),
        "failure": endpoint_for(http_target.url("/status/500")),
        "timeout": endpoint_for(http_target.url("/sleep?s=5"), timeout=TIMEOUT),
    }


@pytest.fixture(params=["fake", "http"])
async def subject(request, http_target, endpoint_for, make_dispatcher) -> AsyncIterator[Subject]:
    scenarios = _scenarios(endpoint_for, http_target)
    if request.param == "http":
        dispatcher: Dispatcher = make_dispatcher()
    else:
        fake = FakeDispatcher(SystemClock())
        fake.script(scenarios["failure"].request.url, Outcome(RunStatus.FAILURE, 500, "HTTP 500"))
        fake.script(
            scenarios["timeout"].request.url,
            Outcome(RunStatus.TIMEOUT, None, "timed out", duration=TIMEOUT),
        )
        dispatcher = fake
    yield Subject(dispatcher, scenarios.__getitem__)
    await dispatcher.close()


def _well_formed(result: DispatchResult) -> None:
    assert result.started_at.tzinfo is not None
    assert result.started_at <= result.finished_at
    assert result.attempts >= 1


async def test_a_success_has_a_status_code_and_no_error(subject):
    result = await subject.dispatcher.dispatch(subject.endpoint("success"), SLOT)

    _well_formed(result)
    assert result.status is RunStatus.SUCCESS
    assert result.http_status == 200
    assert result.error == ""


async def test_a_failure_has_its_status_code_and_an_error(subject):
    result = await subject.dispatcher.dispatch(subject.endpoint("failure"), SLOT)

    _well_formed(result)
    assert result.status is RunStatus.FAILURE
    assert result.http_status == 500
    assert result.error


async def test_a_timeout_has_no_status_code_and_an_error(subject):
    result = await subject.dispatcher.dispatch(subject.endpoint("timeout"), SLOT)

    _well_formed(result)
    assert result.status is RunStatus.TIMEOUT
    assert result.http_status is None
    assert result.error
    assert result.finished_at - result.started_at >= TIMEOUT * 0.9


async def test_close_is_idempotent(subject):
    await subject.dispatcher.close()
    await subject.dispatcher.close()
