"""The hot path's positional parameters are the row dicts' values in the tables'
column order, with timestamps as each database stores them."""

from __future__ import annotations

from typing import Any

import pytest
from store_builders import T0, endpoint, job, secs

from cadenza.adapters.store.codec import (
    RUN_COLUMNS,
    RUN_PARAMS,
    STATE_COLUMNS,
    Codec,
    endpoint_state,
)
from cadenza.adapters.store.dialect import Dialect
from cadenza.adapters.store.postgres import POSTGRES
from cadenza.adapters.store.scheduling import state_params
from cadenza.adapters.store.sqlite import SQLITE
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
        one_shots=(OneShot("osh-1", T0 + secs(5), T0 + secs(60), "now"),),
        pause=Pause(T0 + secs(90), "deploy"),
        last_run_at=T0,
        last_scheduled_for=T0 - secs(1),
        last_status=RunStatus.TIMEOUT,
        failure_count=2,
        success_streak=0,
        attempt=3,
    )
    return [endpoint(of), endpoint(of, next_run_at=None, next_run_source=None), hinted]


DIALECTS = [SQLITE, POSTGRES]


@pytest.mark.parametrize("d", DIALECTS, ids=lambda d: d.name)
def test_run_params_equal_the_run_row(d: Dialect) -> None:
    pg = d is POSTGRES
    for run in _runs():
        row = Codec.run_row(run)
        assert tuple(RUN_PARAMS(row, d.ts_out)) == _expected(row, RUN_COLUMNS, pg)


@pytest.mark.parametrize("d", DIALECTS, ids=lambda d: d.name)
def test_state_params_equal_the_endpoint_state(d: Dialect) -> None:
    pg = d is POSTGRES
    fence = ("ept_x", "w1", 7)
    for ep in _endpoints():
        expected = (*_expected(endpoint_state(ep), STATE_COLUMNS, pg), *fence)
        assert tuple(state_params(d, ep, fence)) == expected


def test_the_state_columns_are_what_the_endpoint_state_holds() -> None:
    for ep in _endpoints():
        assert tuple(endpoint_state(ep)) == STATE_COLUMNS
