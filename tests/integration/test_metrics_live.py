"""``cadenza serve`` in a subprocess: /healthz, /readyz and /metrics answer, and the
metrics, read with prometheus_client's own parser, move as runs happen."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cadenza.testing.live import LiveServer, LoopbackTarget, serve

pytestmark = pytest.mark.slow
WAIT_S = 60.0


@pytest.fixture(scope="module")
def target() -> Iterator[LoopbackTarget]:
    with LoopbackTarget() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("metrics")) as running:
        yield running


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def _samples(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = _get(f"{server.url}/metrics")
    assert status == 200
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _total(samples: dict[tuple[str, Any], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def _wait_for(condition: Any, what: str) -> None:
    step = 0.2
    for _ in range(int(WAIT_S / step)):
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"waited {WAIT_S} s for {what}")


def test_healthz_and_readyz_answer_without_credentials(server: LiveServer) -> None:
    assert _get(f"{server.url}/healthz") == (200, b'{"status":"ok"}')
    _wait_for(lambda: _get(f"{server.url}/readyz")[0] == 200, "readiness")
    body = json.loads(_get(f"{server.url}/readyz")[1])
    assert body["checks"] == {"database": "ok", "migrations": "ok", "scheduler": "ok"}


def test_metrics_parse_and_move_after_runs(server: LiveServer, target: LoopbackTarget) -> None:
    before = _samples(server)
    job = server.call("POST", "/jobs", {"name": "metrics"})
    server.call(
        "POST",
        f"/jobs/{job['id']}/endpoints",
        {
            "name": "ok",
            "request": {"url": f"{target.base}/ok"},
            "baseline": {"interval_seconds": 1},
        },
    )
    _wait_for(lambda: target.hits["/ok"] >= 3, "three runs")
    _wait_for(
        lambda: _total(_samples(server), "cadenza_runs_total", status="success") >= 3,
        "runs counted",
    )
    after = _samples(server)
    assert _total(after, "cadenza_runs_total", status="success", source="baseline-interval") >= 1
    for name in (
        "cadenza_run_start_lateness_seconds_count",
        "cadenza_run_duration_seconds_count",
        "cadenza_claims_total",
        "cadenza_claim_batch_size_count",
    ):
        assert _total(after, name) > _total(before, name), name
    route = "/api/v1/jobs/{job_id}/endpoints"
    assert _total(after, "cadenza_api_requests_total", route=route, status="201") >= 1
    assert _total(after, "cadenza_api_request_duration_seconds_count", route=route) >= 1
    assert ("cadenza_due_backlog", ()) in after
    assert _total(after, "process_resident_memory_bytes") > 0


def test_raw_paths_never_become_label_values(server: LiveServer, tmp_path: Path) -> None:
    assert _get(f"{server.url}/no/such/page/123")[0] in (303, 401, 404)
    routes = {dict(ls).get("route") for (n, ls) in _samples(server) if n.startswith("cadenza_api")}
    assert not any(r and "123" in r for r in routes)
