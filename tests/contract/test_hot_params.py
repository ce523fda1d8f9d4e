"""The hot path's positional parameters equal the generic row dicts they replace."""

from __future__ import annotations

from typing import Any

import pytest
from store_builders import T0, endpoint, job, secs

from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.documents import endpoint_state
from cadenza.adapters.store.hot import RUN_COLUMNS, HotSql
from cadenza.adapters.store.statements import STATE_COLUMNS
from cadenza.adapters.store.tables import to_micros
from cadenza.domain.model import (
    Endpoint,
    IntervalHint,
    OneShot,
    Pause,
    PlanSource,
    ResponseCapture,
    Run,
    RunStatus,
)
from cadenza.ids import new_id

_TIMES = frozenset(
    {
        "scheduled_for",
        "started_at",
        "finished_at",
        "next_run_at",
        "last_run_at",
        "last_scheduled_for",
    }
)


def _expected(row: dict[str, Any], columns: tuple[str, ...], pg: bool) -> tuple[Any, ...]:
    def value(name: str) -> Any:
        v = row[name]
        return to_micros(v) if not pg and name in _TIMES and v is not None else v

    return tuple(value(c) for c in columns)


def _runs() -> list[Run]:
    base = Run(
        id=new_id("run", T0),
        endpoint_id="ept_1",
        job_id="job_1",
        tenant_id="usr_1",
        scheduled_for=T0,
        started_at=T0 + secs(1),
        finished_at=T0 + secs(2),
        status=RunStatus.SUCCESS,
        source=PlanSource.BASELINE_INTERVAL,
    )
    capture = ResponseCapture(b"ok", "text/plain", 2, False, (("x-a", "1"),))
    failed = Run(
        id=new_id("run", T0),
        endpoint_id="ept_2",
        job_id="job_1",
        tenant_id="usr_1",
        scheduled_for=T0,
        started_at=T0,
        finished_at=T0 + secs(30),
        status=RunStatus.FAILURE,
        source=PlanSource.HINT_ONE_SHOT,
        attempt=2,
        missed_slots=3,
        http_status=503,
        error="unavailable",
        response=capture,
        worker_id="w1",
    )
    return [base, failed]


def _endpoints() -> list[Endpoint]:
    of = job()
    hinted = endpoint(
        of,
        interval_hint=IntervalHint(secs(30), T0 + secs(600), "busy"),
        one_shot=OneShot(T0 + secs(5), T0 + secs(60), "now"),
        pause=Pause(T0 + secs(90), "deploy"),
        last_run_at=T0,
        last_scheduled_for=T0 - secs(1),
        last_status=RunStatus.TIMEOUT,
        failure_count=2,
        success_streak=0,
        attempt=3,
    )
    return [endpoint(of), endpoint(of, next_run_at=None, next_run_source=None), hinted]


@pytest.mark.parametrize("pg", [False, True])
def test_run_params_equal_the_run_row(pg: bool) -> None:
    hot = HotSql(pg=pg)
    for run in _runs():
        assert hot.run_params(run) == _expected(Codec.run_row(run), RUN_COLUMNS, pg)


@pytest.mark.parametrize("pg", [False, True])
def test_state_params_equal_the_endpoint_state(pg: bool) -> None:
    hot = HotSql(pg=pg)
    fence = ("ept_x", "w1", 7)
    for ep in _endpoints():
        expected = (*_expected(endpoint_state(ep), STATE_COLUMNS, pg), *fence)
        assert hot.state_params(ep, fence) == expected
