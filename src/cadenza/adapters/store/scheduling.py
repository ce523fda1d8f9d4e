"""The scheduler's side of the SQL store: claim, complete, extend, sweep.

Each function runs inside one transaction opened by ``SqlStore`` and is batched:
a handful of statements per call, whatever the number of endpoints. Fencing is on
``(lease_owner, lease_epoch)``: the epoch grows with every claim, so a worker whose
lease expired cannot write even if it claimed the same endpoint again since.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cadenza.adapters.store.codec import ENDPOINT_COLUMNS, ENDPOINT_WIDTH, Codec, Row
from cadenza.adapters.store.hot import HotSql, fetch, write_batch
from cadenza.adapters.store.statements import Statements
from cadenza.domain import errors, lifecycle
from cadenza.domain.model import Endpoint, Job, PlanSource, Run, RunStatus
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import Claim, Completion

_OWNER = ENDPOINT_COLUMNS.index("lease_owner")
_EPOCH = ENDPOINT_COLUMNS.index("lease_epoch")
_UNTIL = ENDPOINT_COLUMNS.index("lease_until")
_JOB = ENDPOINT_COLUMNS.index("job_id")


class InFlight:
    """Claims not yet completed: their raw row and decoded endpoint, by (id, epoch).

    A completion whose endpoint row is unchanged since the claim (bar a heartbeat's
    ``lease_until``) replans the endpoint decoded at claim time instead of decoding
    it again; decoding is a completion's largest cost after the replan itself.
    """

    LIMIT = 100_000
    """A safety valve: claims dropped without completion or release are forgotten."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, int], tuple[Row, Endpoint]] = {}

    def remember(self, row: Row, endpoint: Endpoint, epoch: int) -> None:
        if len(self._claims) >= self.LIMIT:
            self._claims.clear()
        self._claims[(endpoint.id, epoch)] = (row, endpoint)

    def forget(self, endpoint_id: str, epoch: int) -> tuple[Row, Endpoint] | None:
        return self._claims.pop((endpoint_id, epoch), None)


def _unchanged(claimed: Row, current: Row) -> bool:
    return bool(
        claimed[:_UNTIL] == current[:_UNTIL]
        and claimed[_UNTIL + 1 : ENDPOINT_WIDTH] == current[_UNTIL + 1 : ENDPOINT_WIDTH]
    )


def fence(worker_id: str, claim: Claim) -> dict[str, Any]:
    return {"b_id": claim.endpoint.id, "b_owner": worker_id, "b_epoch": claim.epoch}


async def claim(
    conn: AsyncConnection,
    hot: HotSql,
    codec: Codec,
    in_flight: InFlight,
    worker_id: str,
    now: datetime,
    horizon: datetime,
    limit: int,
    margin: timedelta,
) -> list[Claim]:
    """Leases up to ``limit`` due endpoints in one statement; oldest first."""
    params = hot.claim_params(worker_id, now, horizon, limit, margin)
    rows = await fetch(conn, hot.claim, params)
    result = []
    for row in rows:
        ep = codec.endpoint(row, hot.ts_in)
        # The claim's WHERE guarantees both; the asserts narrow the types.
        assert ep.next_run_at is not None
        assert ep.lease is not None
        source = ep.next_run_source or _baseline_source(ep.baseline)
        result.append(Claim(ep, ep.next_run_at, source, ep.attempt, ep.lease.epoch))
        in_flight.remember(tuple(row), ep, ep.lease.epoch)
    # RETURNING promises no order.
    result.sort(key=_claim_order)
    return result


def _claim_order(claim: Claim) -> tuple[datetime, str]:
    return (claim.scheduled_for, claim.endpoint.id)


def _baseline_source(baseline: object) -> PlanSource:
    if isinstance(baseline, IntervalSchedule):
        return PlanSource.BASELINE_INTERVAL
    return PlanSource.BASELINE_CRON


async def complete(
    conn: AsyncConnection,
    hot: HotSql,
    codec: Codec,
    in_flight: InFlight,
    worker_id: str,
    completions: Sequence[Completion],
    now: datetime,
) -> list[str]:
    """Insert the runs, then replan and release every endpoint still ours."""
    await _insert_runs(conn, hot, [c.run for c in completions])
    ids = hot.ids_param([c.claim.endpoint.id for c in completions])
    current = {r[0]: r for r in await fetch(conn, hot.current, (ids,))}
    jobs: dict[str, Job] = {}
    updates: list[tuple[Any, ...]] = []
    lost: list[str] = []
    ts = hot.ts_in
    for done in completions:
        claimed = in_flight.forget(done.claim.endpoint.id, done.claim.epoch)
        row = current.get(done.claim.endpoint.id)
        if row is None or row[_OWNER] != worker_id or row[_EPOCH] != done.claim.epoch:
            lost.append(done.claim.endpoint.id)
            continue
        job = jobs.get(row[_JOB])
        if job is None:
            job = jobs[row[_JOB]] = codec.job(row, ENDPOINT_WIDTH, ts)
        # Current state, not the claim's copy: hints or pauses written during the run count.
        if claimed is not None and _unchanged(claimed[0], row):
            endpoint = claimed[1]
        else:
            endpoint = codec.endpoint(row, ts)
        replanned = lifecycle.after_run(endpoint, job, done.run, now)
        fenced = (replanned.id, worker_id, done.claim.epoch)
        updates.append(hot.state_params(replanned, fenced))
    if updates:
        await write_batch(conn, hot, hot.complete, updates)
    return lost


async def _insert_runs(conn: AsyncConnection, hot: HotSql, batch: list[Run]) -> None:
    params = [hot.run_params(r) for r in batch]
    if await write_batch(conn, hot, hot.insert_runs, params) < len(batch):
        raise errors.Conflict(
            "A run of this batch is already recorded for its endpoint, slot and attempt "
            "(only a 'lost' record may be replaced); nothing was written."
        )


async def extend(
    conn: AsyncConnection,
    sql: Statements,
    worker_id: str,
    claims: Sequence[Claim],
    until: datetime,
) -> list[str]:
    ids = [c.endpoint.id for c in claims]
    result = await conn.execute(sql.owned, {"ids": ids, "owner": worker_id})
    owned = {row.id: row.lease_epoch for row in result}
    ours = [c for c in claims if owned.get(c.endpoint.id) == c.epoch]
    if ours:
        await conn.execute(sql.extend, [{**fence(worker_id, c), "until": until} for c in ours])
    kept = {c.endpoint.id for c in ours}
    return [i for i in ids if i not in kept]


async def sweep(conn: AsyncConnection, sql: Statements, now: datetime, limit: int) -> list[Run]:
    """Record each expired lease as a lost attempt and free the slot for a new claim."""
    rows = (await conn.execute(sql.expired, {"now": now, "limit": limit})).all()
    if not rows:
        return []
    lost = [_lost_run(r, now) for r in rows]
    await conn.execute(sql.insert_lost_runs, [Codec.run_row(r) for r in lost])
    fences = [{"b_id": r.id, "b_owner": r.lease_owner, "b_epoch": r.lease_epoch} for r in rows]
    await conn.execute(sql.lost, fences)
    return lost


def _lost_run(row: Row, now: datetime) -> Run:
    slot = row.lease_slot or row.next_run_at or now
    source = row.next_run_source
    return Run(
        id=new_id("run", now),
        endpoint_id=row.id,
        job_id=row.job_id,
        tenant_id=row.tenant_id,
        scheduled_for=slot,
        started_at=row.lease_claimed_at or now,
        finished_at=now,
        status=RunStatus.LOST,
        source=PlanSource.BASELINE_INTERVAL if source is None else PlanSource(source),
        attempt=row.attempt,
        error=(
            f"Worker {row.lease_owner!r} held the lease until {row.lease_until.isoformat()} "
            "and did not report back; the attempt is presumed lost and the slot is retried."
        ),
        worker_id=row.lease_owner,
    )
