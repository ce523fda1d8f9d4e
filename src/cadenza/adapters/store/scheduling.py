"""The scheduler's side of the SQL store: claim, complete, extend, sweep.

Each function is one transaction's work, batched: a handful of statements per call,
whatever the number of endpoints. The claim and the completions are written as
``hot.Steps`` (the statements they yield, with the logic between them), which
``SqlStore`` runs a round trip per statement on PostgreSQL and all in one call to
SQLite's hot writer thread (``sqlite_hot``); ``extend`` and ``sweep`` run on a
connection inside a transaction ``SqlStore`` opened. Fencing is on
``(lease_owner, lease_epoch)``: the epoch grows with every claim, so a worker whose
lease expired cannot write even if it claimed the same endpoint again since.

Completion must plan from the endpoint's *current* state (SCHEDULING.md §3): a
hint or pause written during the run counts. Reading every row again would cost a
query and a decode per run, so the claim remembers what it read (``InFlight``),
with the revisions of the endpoint and its job, which every write by a person, an
agent or the planner bumps (``SqlTx``). The completion replans those copies before
its transaction starts. In it, it checks the batch's jobs once (locked against
change until commit), then writes the endpoints fenced on the lease *and* their
revision: a row that passes is unchanged since the claim, so its copy is its
current state. If a job changed, or any row fails the fence, that transaction is
rolled back (``Changed``) and the batch takes the general path in a new one: read
the current rows, replan, write fenced on the lease alone, and report the
endpoints no longer ours as lost. Rolling back the whole transaction costs the
runs' insert again, but only when something changed during a run; a savepoint
would cost two more round trips on every flush.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cadenza.adapters.store.codec import ENDPOINT_COLUMNS, ENDPOINT_WIDTH, JOB_COLUMNS, Codec, Row
from cadenza.adapters.store.hot import Fetch, HotSql, Steps, Write
from cadenza.adapters.store.statements import Statements
from cadenza.domain import errors, lifecycle
from cadenza.domain.model import Endpoint, Job, PlanSource, Run, RunStatus
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import Claim, Completed, Completion

_OWNER = ENDPOINT_COLUMNS.index("lease_owner")
_EPOCH = ENDPOINT_COLUMNS.index("lease_epoch")
_JOB = ENDPOINT_COLUMNS.index("job_id")
_REVISION = ENDPOINT_COLUMNS.index("revision")
_JOB_ID = JOB_COLUMNS.index("id")
_JOB_REVISION = JOB_COLUMNS.index("revision")


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claim read: the endpoint and its job, each with its revision."""

    endpoint: Endpoint
    revision: int
    job: Job
    job_revision: int


class InFlight:
    """Claims not yet completed, by (endpoint id, epoch); see the module docstring."""

    LIMIT = 100_000
    """A safety valve: claims dropped without completion or release are forgotten."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, int], Claimed] = {}

    def remember(self, claimed: Claimed, epoch: int) -> None:
        if len(self._claims) >= self.LIMIT:
            self._claims.clear()
        self._claims[(claimed.endpoint.id, epoch)] = claimed

    def forget(self, endpoint_id: str, epoch: int) -> Claimed | None:
        return self._claims.pop((endpoint_id, epoch), None)


def fence(worker_id: str, claim: Claim) -> dict[str, Any]:
    return {"b_id": claim.endpoint.id, "b_owner": worker_id, "b_epoch": claim.epoch}


def claim_rows(
    hot: HotSql,
    worker_id: str,
    now: datetime,
    horizon: datetime,
    limit: int,
    margin: timedelta,
) -> Steps[tuple[list[Row], list[Row]]]:
    """Leases up to ``limit`` due endpoints in one statement: their rows, their jobs'.

    On PostgreSQL that statement returns each job with its endpoint's row; on SQLite
    (no RETURNING in a CTE) a second query in the same transaction reads the jobs.
    """
    params = hot.claim_params(worker_id, now, horizon, limit, margin)
    rows: list[Row] = yield Fetch(hot.claim, params)
    if not rows:
        return [], []
    if hot.pg:
        jobs = {row[_JOB]: row[ENDPOINT_WIDTH:] for row in rows}
        return rows, list(jobs.values())
    job_ids = hot.ids_param(list({row[_JOB] for row in rows}))
    job_rows: list[Row] = yield Fetch(hot.jobs, (job_ids,))
    return rows, job_rows


def claims(
    hot: HotSql, codec: Codec, in_flight: InFlight, rows: list[Row], job_rows: list[Row]
) -> list[Claim]:
    """Decodes what ``claim_rows`` read (after its commit: no lock is held meanwhile)."""
    ts = hot.ts_in
    jobs = {r[_JOB_ID]: (codec.job(r, 0, ts), r[_JOB_REVISION]) for r in job_rows}
    result = []
    for row in rows:
        ep = codec.endpoint(row, ts)
        # The claim's WHERE guarantees both; the asserts narrow the types.
        assert ep.next_run_at is not None
        assert ep.lease is not None
        source = ep.next_run_source or _baseline_source(ep.baseline)
        epoch = ep.lease.epoch
        result.append(Claim(ep, ep.next_run_at, source, ep.attempt, epoch))
        job, job_revision = jobs[ep.job_id]
        in_flight.remember(Claimed(ep, row[_REVISION], job, job_revision), epoch)
    # RETURNING promises no order.
    result.sort(key=_claim_order)
    return result


def _claim_order(claim: Claim) -> tuple[datetime, str]:
    return (claim.scheduled_for, claim.endpoint.id)


def _baseline_source(baseline: object) -> PlanSource:
    if isinstance(baseline, IntervalSchedule):
        return PlanSource.BASELINE_INTERVAL
    return PlanSource.BASELINE_CRON


@dataclass(frozen=True, slots=True)
class Prepared:
    """A completion batch encoded before its transaction: runs, the replans of the
    claimed copies fenced on their revisions (``None``: the general path decides)
    with the earliest next slot among them, and the revision of each job as the
    claims saw it."""

    runs: list[tuple[Any, ...]]
    unchanged: list[tuple[Any, ...]] | None
    earliest: datetime | None
    job_revisions: dict[str, int]


def prepare(
    hot: HotSql,
    in_flight: InFlight,
    worker_id: str,
    completions: Sequence[Completion],
    now: datetime,
) -> Prepared:
    """The CPU work of ``complete``, done without holding a transaction open."""
    runs = [hot.run_params(c.run) for c in completions]
    unchanged: list[tuple[Any, ...]] | None = []
    slots: list[datetime] = []
    jobs: dict[str, int] = {}
    for done in completions:
        claim = done.claim
        claimed = in_flight.forget(claim.endpoint.id, claim.epoch)
        job_id = claim.endpoint.job_id
        if (
            claimed is None  # claimed by another store object, or forgotten
            or unchanged is None
            or jobs.setdefault(job_id, claimed.job_revision) != claimed.job_revision
        ):
            unchanged = None
            continue
        replanned = lifecycle.after_run(claimed.endpoint, claimed.job, done.run, now)
        fenced = (claim.endpoint.id, worker_id, claim.epoch, claimed.revision)
        unchanged.append(hot.state_params(replanned, fenced))
        if replanned.next_run_at is not None:
            slots.append(replanned.next_run_at)
    return Prepared(runs, unchanged, min(slots, default=None), jobs)


class Changed(Exception):
    """A job or an endpoint of the batch changed since its claim (see the module
    docstring); raised to roll the transaction back."""


def complete_unchanged(hot: HotSql, prepared: Prepared) -> Steps[Completed]:
    """Insert the runs and write the replanned copies, fenced on their revisions;
    raises ``Changed`` unless every job and every endpoint is as claimed."""
    unchanged = prepared.unchanged
    if unchanged is None:
        raise Changed
    ids = hot.ids_param(list(prepared.job_revisions))
    current: list[Row] = yield Fetch(hot.job_revisions, (ids,))
    if {r[0]: r[1] for r in current} != prepared.job_revisions:
        raise Changed
    yield from _insert_runs(hot, prepared.runs)
    if (yield Write(hot.complete_unchanged, unchanged)) != len(unchanged):
        raise Changed
    return Completed([], prepared.earliest)


def complete_from_current(
    hot: HotSql,
    codec: Codec,
    worker_id: str,
    completions: Sequence[Completion],
    prepared: Prepared,
    now: datetime,
) -> Steps[Completed]:
    """Insert the runs, re-read every endpoint and its job, replan, and write what is
    still ours."""
    yield from _insert_runs(hot, prepared.runs)
    ids = hot.ids_param([c.claim.endpoint.id for c in completions])
    rows: list[Row] = yield Fetch(hot.current, (ids,))
    current = {r[0]: r for r in rows}
    jobs: dict[str, Job] = {}
    updates: list[tuple[Any, ...]] = []
    slots: list[datetime] = []
    lost: list[str] = []
    ts = hot.ts_in
    for done in completions:
        row = current.get(done.claim.endpoint.id)
        if row is None or row[_OWNER] != worker_id or row[_EPOCH] != done.claim.epoch:
            lost.append(done.claim.endpoint.id)
            continue
        job = jobs.get(row[_JOB])
        if job is None:
            job = jobs[row[_JOB]] = codec.job(row, ENDPOINT_WIDTH, ts)
        replanned = lifecycle.after_run(codec.endpoint(row, ts), job, done.run, now)
        fenced = (replanned.id, worker_id, done.claim.epoch)
        updates.append(hot.state_params(replanned, fenced))
        if replanned.next_run_at is not None:
            slots.append(replanned.next_run_at)
    if updates:
        yield Write(hot.complete, updates)
    return Completed(lost, min(slots, default=None))


def _insert_runs(hot: HotSql, params: list[tuple[Any, ...]]) -> Steps[None]:
    if (yield Write(hot.insert_runs, params)) < len(params):
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
