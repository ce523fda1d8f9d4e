"""summarize_endpoint_health: reliability figures over a time window.

Computed from the runs scheduled in the window, read by keyset pages and capped at
``MAX_HEALTH_RUNS`` (``truncated`` then says the oldest runs were left out), so the
cost is bounded however busy the endpoint is.

Definitions: a *failure episode* starts at a non-success run that follows a success
(or opens the window) and ends at the next success. MTBF is the mean time between
the starts of consecutive episodes; MTTR the mean time from an episode's first
failed run to the success that ended it (open episodes are not counted). Durations
are nearest-rank percentiles of the runs' durations.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta

from pydantic import Field

from cadenza.actions.base import Action, Context, Example
from cadenza.actions.endpoint_models import ActiveHints, active_hints
from cadenza.actions.endpoints import EndpointRef
from cadenza.actions.wire import EXAMPLE_IDS, Output
from cadenza.domain.identity import Scope
from cadenza.domain.model import PlanSource, Run, RunStatus
from cadenza.ports import RunFilter, Tx

MAX_HEALTH_WINDOW = timedelta(days=30)
MAX_HEALTH_RUNS = 10_000
_PAGE = 500


class HealthInput(EndpointRef):
    window_seconds: float = Field(
        86_400,
        ge=60,
        le=MAX_HEALTH_WINDOW.total_seconds(),
        description="How far back to look, in seconds (default 24 h, at most 30 days).",
    )


class Streak(Output):
    status: str = Field(description="success or failure.")
    length: int


class HealthOut(Output):
    endpoint_id: str
    window_start: datetime
    window_end: datetime
    runs: int
    truncated: bool = Field(description=f"More than {MAX_HEALTH_RUNS} runs; oldest left out.")
    by_status: dict[RunStatus, int]
    success_rate: float | None = Field(description="0..1; null without runs.")
    p50_duration_seconds: float | None
    p95_duration_seconds: float | None
    current_streak: Streak | None
    longest_failure_streak: int
    failure_episodes: int
    mtbf_seconds: float | None = Field(description="Mean time between failure episodes.")
    mttr_seconds: float | None = Field(description="Mean time to recover from an episode.")
    cadence_source: PlanSource | None = Field(description="The rule deciding the next run now.")
    next_run_at: datetime | None
    hints: ActiveHints


async def _window_runs(tx: Tx, tenant_id: str, flt: RunFilter) -> tuple[list[Run], bool]:
    runs: list[Run] = []
    cursor: str | None = None
    while len(runs) < MAX_HEALTH_RUNS:
        page = await tx.list_runs(tenant_id, flt, cursor=cursor, limit=_PAGE)
        runs.extend(page.items)
        if page.next_cursor is None:
            return runs[:MAX_HEALTH_RUNS], False
        cursor = page.next_cursor
    return runs[:MAX_HEALTH_RUNS], True


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values`` (unsorted); ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _streaks(chronological: list[Run]) -> tuple[Streak | None, int]:
    current: Streak | None = None
    longest = run_length = 0
    for run in chronological:
        label = "success" if run.status.ok else "failure"
        run_length = run_length + 1 if current is not None and current.status == label else 1
        current = Streak(status=label, length=run_length)
        if label == "failure":
            longest = max(longest, run_length)
    return current, longest


def _episodes(chronological: list[Run]) -> tuple[int, float | None, float | None]:
    starts: list[datetime] = []
    repairs: list[float] = []
    open_since: datetime | None = None
    for run in chronological:
        if not run.status.ok and open_since is None:
            open_since = run.started_at
            starts.append(run.started_at)
        elif run.status.ok and open_since is not None:
            repairs.append((run.started_at - open_since).total_seconds())
            open_since = None
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    mtbf = sum(gaps) / len(gaps) if gaps else None
    mttr = sum(repairs) / len(repairs) if repairs else None
    return len(starts), mtbf, mttr


async def summarize_endpoint_health(ctx: Context, data: HealthInput) -> HealthOut:
    now = ctx.now()
    start = now - timedelta(seconds=data.window_seconds)
    async with ctx.store.transaction(readonly=True) as tx:
        endpoint = await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
        flt = RunFilter(endpoint_id=endpoint.id, since=start)
        newest_first, truncated = await _window_runs(tx, ctx.tenant_id, flt)
    runs = list(reversed(newest_first))
    by_status = dict.fromkeys(RunStatus, 0)
    for run in runs:
        by_status[run.status] += 1
    durations = [run.duration.total_seconds() for run in runs]
    streak, longest = _streaks(runs)
    episodes, mtbf, mttr = _episodes(runs)
    return HealthOut(
        endpoint_id=endpoint.id,
        window_start=start,
        window_end=now,
        runs=len(runs),
        truncated=truncated,
        by_status=by_status,
        success_rate=by_status[RunStatus.SUCCESS] / len(runs) if runs else None,
        p50_duration_seconds=percentile(durations, 0.50),
        p95_duration_seconds=percentile(durations, 0.95),
        current_streak=streak,
        longest_failure_streak=longest,
        failure_episodes=episodes,
        mtbf_seconds=mtbf,
        mttr_seconds=mttr,
        cadence_source=endpoint.next_run_source,
        next_run_at=endpoint.next_run_at,
        hints=active_hints(endpoint, now),
    )


ACTIONS = (
    Action(
        name="summarize_endpoint_health",
        summary="Reliability of an endpoint over a window",
        description=(
            "Summarises an endpoint's runs over the last window_seconds (default 86400 = 24 h): "
            "counts per status, success rate (0..1), p50/p95 duration in seconds, the current "
            "success/failure streak, failure episodes with MTBF and MTTR in seconds, and what "
            "currently decides its cadence (baseline, hint, clamp or pause). Use before "
            "applying a hint."
        ),
        input_model=HealthInput,
        output_model=HealthOut,
        handler=summarize_endpoint_health,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/endpoints/{endpoint_id}/health",
        mutates=False,
        idempotent=True,
        planner_tool=True,
        examples=(
            Example(
                {"endpoint_id": EXAMPLE_IDS["endpoint_id"], "window_seconds": 3600},
                "The last hour.",
            ),
        ),
    ),
)
