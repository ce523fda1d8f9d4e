"""``cadenza demo-target``: the scenarios' systems answer on loopback as the
simulation's targets do, on a story clock that starts at the first request."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from aiohttp.test_utils import TestServer
from cli_kit import CADENZA

from cadenza.cli.demo import DemoTarget
from cadenza.simulation.scenario import load_scenario
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def target(clock: FrozenClock) -> AsyncIterator[str]:
    demo = DemoTarget(
        [load_scenario("flash-sale"), load_scenario("etl-pipeline")], clock, speed=1, seed=1
    )
    server = TestServer(demo.app(), host="127.0.0.1", port=0)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_health_check_reports_the_scripted_numbers_of_its_minute(
    target: str, clock: FrozenClock
) -> None:
    async with httpx2.AsyncClient() as http:
        calm = (await http.get(f"{target}/flash-sale/ops/traffic")).json()
        clock.advance(timedelta(minutes=6))
        surge = (await http.get(f"{target}/flash-sale/ops/traffic")).json()
    assert calm["visitors_per_min"] < 1500
    assert surge["visitors_per_min"] > 3000


async def test_a_source_that_rate_limits_answers_429_with_retry_after(
    target: str, clock: FrozenClock
) -> None:
    scenario = load_scenario("etl-pipeline")
    spec = next(e for e in scenario.endpoints if any(f.retry_after_seconds for f in e.fails_when))
    async with httpx2.AsyncClient() as http:
        url = f"{target}/etl-pipeline{spec.path}"
        answers = []
        for _ in range(int(scenario.duration_minutes)):
            answers.append(await http.request(spec.method, url))
            clock.advance(timedelta(minutes=1))
    limited = [a for a in answers if a.status_code == 429]
    assert limited
    assert all(a.headers["Retry-After"].isdigit() for a in limited)


async def test_an_unknown_path_is_a_404_and_the_index_lists_every_endpoint(target: str) -> None:
    async with httpx2.AsyncClient() as http:
        missing = await http.get(f"{target}/flash-sale/nowhere")
        index = (await http.get(f"{target}/")).json()
    assert missing.status_code == 404
    assert "GET /flash-sale/ops/traffic" in index["flash-sale"]["endpoints"]


def test_the_command_refuses_an_address_that_is_not_loopback() -> None:
    result = subprocess.run(
        [CADENZA, "demo-target", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
