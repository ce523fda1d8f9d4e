"""A real ``cadenza serve``: a surge reported by one run alone fires the rule on it
(issue 16.2), although the analyses' debounce is far longer than the test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cadenza.testing.live import LiveServer, LoopbackTarget, serve

pytestmark = pytest.mark.slow
WAIT_S = 90.0
CALM = {"visitors": 40}
SURGE = {"visitors": 5000}
SURGE_RULE = {
    "name": "surge",
    "when": [{"kind": "response", "op": "gt", "value": 1000, "json_pointer": "/visitors"}],
    "then": [{"verb": "interval_hint", "interval_seconds": 7, "ttl_seconds": 3600}],
}


@pytest.fixture
def target() -> Iterator[LoopbackTarget]:
    with LoopbackTarget() as running:
        running.respond("/traffic", 200, CALM)
        yield running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    # A debounce no test waits out: only the evaluation at each run can fire the rule.
    with serve(tmp_path, {"CADENZA_PLANNER_DEBOUNCE_SECONDS": "3600"}) as running:
        yield running


def _wait_for(condition: Callable[[], Any], what: str) -> Any:
    step = 0.2
    for _ in range(int(WAIT_S / step)):
        found = condition()
        if found:
            return found
        time.sleep(step)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def test_a_surge_on_a_single_run_fires_its_rule(server: LiveServer, target: LoopbackTarget) -> None:
    job = server.call("POST", "/jobs", {"name": "shop"})
    endpoint = server.call(
        "POST",
        f"/jobs/{job['id']}/endpoints",
        {
            "name": "traffic",
            "request": {"url": f"{target.base}/traffic"},
            "baseline": {"interval_seconds": 1},
        },
    )
    path = f"/endpoints/{endpoint['id']}"
    server.call("PUT", f"{path}/planner", {"rules": [SURGE_RULE], "reason": "watch surges"})
    _wait_for(lambda: target.hits["/traffic"] >= 2, "calm runs")
    target.respond_once("/traffic", 200, SURGE)
    surged_at = _wait_for(lambda: not target.once and target.hits["/traffic"], "the surge run")
    _wait_for(lambda: target.hits["/traffic"] >= surged_at + 2, "calm runs after the surge")

    hint = _wait_for(lambda: server.call("GET", path)["hints"]["interval"], "the rule's hint")
    assert hint["interval_seconds"] == 7
    assert hint["actor"]["kind"] == "planner"
    sessions = server.call("GET", f"/planner/sessions?endpoint_id={endpoint['id']}")
    fired = [c["name"] for s in sessions["items"] for c in s["tool_calls"]]
    assert fired == ["rule:surge"]
