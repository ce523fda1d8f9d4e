"""The operations server of ``cadenza worker`` and ``cadenza planner``, and the
observer port: the Prometheus adapter and the no-op one take the same calls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cadenza.adapters.metrics import PrometheusObserver
from cadenza.adapters.probe_server import ProbeServer
from cadenza.adapters.probes import Readiness
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.domain.model import PlanSource, RunStatus
from cadenza.domain.planning import (
    PlannerKind,
    PlannerSession,
    SessionOutcome,
    ToolCall,
    Trigger,
)
from cadenza.ports import NullObserver, Observer
from cadenza.testing import FrozenClock

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _exercise(observer: Observer) -> None:
    observer.run_finished(RunStatus.SUCCESS, PlanSource.BASELINE_CRON, 0.002, 0.1)
    observer.run_finished(RunStatus.FAILURE, PlanSource.HINT_INTERVAL, -0.001, 0.0)
    observer.claimed(7)
    observer.leases_lost("expired", 2)
    observer.leases_lost("fenced", 0)
    observer.due_backlog(42)
    session = PlannerSession(
        "pls_1", "usr_1", "ep_1", "job_1", PlannerKind.RULES, Trigger.FAILURE, T0, T0,
        SessionOutcome.CHANGED, tool_calls=(ToolCall("hint", {}, "applied"),),
    )  # fmt: skip
    observer.planner_analysis(session)
    observer.pruned("runs", 1000)
    observer.notification("slack", True)
    observer.notification("email", False)
    observer.api_request("/api/v1/jobs", "GET", 200, 0.01)


def _values(observer: PrometheusObserver) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = observer.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_every_observer_takes_every_call_and_prometheus_counts_them() -> None:
    _exercise(NullObserver())
    observer = PrometheusObserver(process_figures=False)
    _exercise(observer)
    got = _values(observer)
    ok = frozenset({("status", "success"), ("source", "baseline-cron")})
    assert got[("cadenza_runs_total", ok)] == 1
    assert got[("cadenza_run_start_lateness_seconds_count", frozenset())] == 2
    assert got[("cadenza_claim_batch_size_sum", frozenset())] == 7
    assert got[("cadenza_leases_lost_total", frozenset({("reason", "expired")}))] == 2
    assert got[("cadenza_due_backlog", frozenset())] == 42
    changed = frozenset({("planner", "rules"), ("outcome", "changed")})
    assert got[("cadenza_planner_analyses_total", changed)] == 1
    assert got[("cadenza_planner_changes_total", frozenset({("verdict", "applied")}))] == 1
    assert got[("cadenza_retention_pruned_total", frozenset({("kind", "runs")}))] == 1000
    failed = frozenset({("channel", "email"), ("result", "failed")})
    assert got[("cadenza_notifications_total", failed)] == 1


async def test_the_worker_probe_server_serves_metrics_and_probes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}"
    migrate(url)
    store = await open_store(url, FernetSecretBox(FernetSecretBox.generate_key()))
    observer = PrometheusObserver()
    observer.claimed(3)
    server = ProbeServer(observer, Readiness(store, FrozenClock()), "127.0.0.1", 0, token="t0k")
    serving = asyncio.create_task(server.run())
    try:
        await asyncio.wait_for(server.started.wait(), 30)
        base = f"http://127.0.0.1:{server.bound_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as answer:
                assert answer.status == 200
            async with http.get(f"{base}/readyz") as answer:
                assert answer.status == 200
                assert (await answer.json())["checks"]["migrations"] == "ok"
            async with http.get(f"{base}/metrics") as answer:
                assert answer.status == 401
            headers = {"Authorization": "Bearer t0k"}
            async with http.get(f"{base}/metrics", headers=headers) as answer:
                assert answer.status == 200
                text = await answer.text()
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"cadenza_claims", "process_resident_memory_bytes"} <= names
    finally:
        server.stop()
        await asyncio.wait_for(serving, 30)
        await store.close()
