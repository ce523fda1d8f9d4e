"""The scheduler's statements per endpoint and cycle: the claim, the start mark and
the completion.

Each is written as ``dialect.Steps`` (the SQL it runs, both databases' spelling side
by side, with its logic in between), which the database runs as one transaction:
PostgreSQL a round trip per statement, SQLite all on its hot writer's thread.

**The claim** leases up to ``limit`` due endpoints in one statement: the earliest
``next_run_at`` first, each lease lasting the request's ``lease_budget`` plus a
margin, the slot and time of the claim kept for the sweeper. Their jobs come with
them on PostgreSQL; SQLite's RETURNING cannot join, so a second statement reads
them. Fencing is on ``(lease_owner, lease_epoch)``: the epoch grows with every
claim, so a worker whose lease expired cannot write even if it claimed the same
endpoint again since. An ``overlap=allow`` endpoint is claimed while fewer than its
``max_in_flight`` runs are in flight (``flights``; a ``skip`` one has none).
PostgreSQL skips rows another worker is claiming right now (``SKIP LOCKED``) and
runs the claim outside a transaction: a statement stands alone, and BEGIN and
COMMIT would be two more round trips in a busy worker's event loop.

**The completion** records a batch of runs, replans each endpoint and releases its
lease. It must plan from the endpoint's *current* state (SCHEDULING.md §3): a hint
or pause written during the run counts. Reading every row again would cost a query
and a decode per run, so the claim remembers what it read (``InFlight``) with the
revisions of the endpoint and its job, which every write by a person, an agent or
the planner bumps (``tx``). ``prepare`` replans those copies before any transaction
starts. ``complete_unchanged`` then checks the batch's jobs once (locked against
change until commit on PostgreSQL; SQLite's write lock already holds them) and
writes the endpoints fenced on the lease *and* their revision: a row that passes is
unchanged since the claim, so its copy is its current state. If a job changed, or
any row fails the fence, that transaction is rolled back (``Changed``) and the
batch takes ``complete_from_current`` in a new one: read the current rows, replan,
write fenced on the lease alone, and report the endpoints no longer ours as lost.
Rolling back costs the runs' insert again, but only when something changed during
a run; a savepoint would cost two more round trips on every batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cadenza.adapters.store.codec import (
    ENDPOINT_COLUMNS,
    JOB_COLUMNS,
    RUN_COLUMNS,
    RUN_PARAMS,
    STATE_COLUMNS,
    STATE_PARAMS,
    Codec,
    Row,
    endpoint_state,
)
from cadenza.adapters.store.dialect import Batch, Dialect, Fetch, Sql, Staged, Steps, Write
from cadenza.adapters.store.documents import micros
from cadenza.adapters.store.tables import endpoints, runs
from cadenza.domain import errors, lifecycle
from cadenza.domain.model import Endpoint, Job, PlanSource
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ports import Claim, Completed, Completion

# The claim ----------------------------------------------------------------------

_COLUMNS = ", ".join(ENDPOINT_COLUMNS)
_DUE = (
    "SELECT id FROM endpoints WHERE lease_owner IS NULL AND next_run_at IS NOT NULL "
    "AND next_run_at <= {p} AND in_flight < max_in_flight ORDER BY next_run_at LIMIT {p}"
)
_LEASE = "lease_epoch = lease_epoch + 1, lease_slot = next_run_at, lease_claimed_at = {p}"

CLAIM = Sql(
    # Parameters: owner, now, margin (µs), now, horizon, limit. Rows: ENDPOINT_COLUMNS,
    # on PostgreSQL followed by the endpoint's job's JOB_COLUMNS.
    sqlite=(
        "UPDATE endpoints SET lease_owner = ?, lease_until = ? + lease_budget_us + ?, "  # noqa: S608
        f"{_LEASE.format(p='?')} WHERE id IN ({_DUE.format(p='?')}) RETURNING {_COLUMNS}"
    ),
    # ANY(ARRAY(…)) runs the locking subquery once and then updates by primary key;
    # with IN (…) the planner may hash-join against a scan of the whole table.
    postgres=(
        "WITH claimed AS (UPDATE endpoints SET lease_owner = %s, "  # noqa: S608
        "lease_until = %s + (lease_budget_us + %s) * interval '1 microsecond', "
        f"{_LEASE.format(p='%s')} "
        f"WHERE id = ANY(ARRAY({_DUE.format(p='%s')} FOR UPDATE SKIP LOCKED)) "
        f"RETURNING {_COLUMNS}) "
        f"SELECT c.*, {', '.join(f'j.{c}' for c in JOB_COLUMNS)} "
        "FROM claimed AS c JOIN jobs AS j ON j.id = c.job_id"
    ),
)
_IN_IDS = Sql(sqlite="IN (SELECT value FROM json_each(?))", postgres="= ANY(%s)")
CLAIMED_JOBS = Sql(
    sqlite=f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id {_IN_IDS.sqlite}",  # noqa: S608
    postgres=f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id {_IN_IDS.postgres}",  # noqa: S608
)

_JOB_ID = ENDPOINT_COLUMNS.index("job_id")
_REVISION = ENDPOINT_COLUMNS.index("revision")
_JOB_REVISION = JOB_COLUMNS.index("revision")


def claim(
    d: Dialect, worker_id: str, now: datetime, horizon: datetime, limit: int, margin: timedelta
) -> Steps[tuple[list[Row], list[Row]]]:
    """Lease up to ``limit`` endpoints due by ``horizon``: their rows and their jobs'."""
    out = d.ts_out
    rows: list[Row] = yield Fetch(
        CLAIM, (worker_id, out(now), micros(margin), out(now), out(horizon), limit)
    )
    if not rows:
        return [], []
    if d.claim_returns_jobs:
        width = len(ENDPOINT_COLUMNS)
        return rows, list({row[_JOB_ID]: row[width:] for row in rows}.values())
    job_ids = list({row[_JOB_ID] for row in rows})
    jobs: list[Row] = yield Fetch(CLAIMED_JOBS, (d.ids(job_ids),))
    return rows, jobs


# The start mark -----------------------------------------------------------------

MARK_STARTED = Sql(
    # Parameters: now, the claims' fences (``Dialect.fences``), owner. Rows: the
    # fences still ours, now marked. On PostgreSQL the fences are joined to the rows,
    # and the owner compared through coalesce(): a worker's id is new to the
    # statistics, so the planner took ``lease_owner = %s`` for one row, read the
    # owner's rows first and tested each against every fence (35 ms for 1,500 leases
    # and 122 fences). Without an estimate to trust, it joins by the primary key or
    # by hash (tests/contract/test_lease_plans.py). No owner is ever ''.
    sqlite="UPDATE endpoints SET lease_started_at = ? WHERE (id, lease_epoch) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)) "
    "AND lease_owner = ? RETURNING id, lease_epoch",
    postgres="UPDATE endpoints AS e SET lease_started_at = %s "
    "FROM unnest(%s::text[], %s::bigint[]) AS fence(id, epoch) "
    "WHERE e.id = fence.id AND e.lease_epoch = fence.epoch "
    "AND coalesce(e.lease_owner, '') = %s "
    "RETURNING e.id, e.lease_epoch",
)


def mark_started(
    d: Dialect, worker_id: str, claims: Sequence[Claim], now: datetime
) -> Steps[list[str]]:
    """Record that ``claims``' requests are about to leave: the ids no longer ours."""
    fences = d.fences([(c.endpoint.id, c.epoch) for c in claims])
    rows: list[Row] = yield Fetch(MARK_STARTED, (d.ts_out(now), *fences, worker_id))
    kept = {(row[0], row[1]) for row in rows}
    return [c.endpoint.id for c in claims if (c.endpoint.id, c.epoch) not in kept]


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


def claims(
    d: Dialect, codec: Codec, in_flight: InFlight, rows: list[Row], job_rows: list[Row]
) -> list[Claim]:
    """Decode what ``claim`` read (after its commit: no lock is held meanwhile), in
    slot order, and remember each in ``in_flight``."""
    ts = d.ts_in
    jobs = {r[0]: (codec.job(r, ts), r[_JOB_REVISION]) for r in job_rows}
    result = []
    for row in rows:
        ep = codec.endpoint(row, ts)
        # The claim's WHERE guarantees both; the asserts narrow the types.
        assert ep.next_run_at is not None
        assert ep.lease is not None
        source = ep.next_run_source or _baseline_source(ep.baseline)
        result.append(Claim(ep, ep.next_run_at, source, ep.attempt, ep.lease.epoch))
        job, job_revision = jobs[ep.job_id]
        in_flight.remember(Claimed(ep, row[_REVISION], job, job_revision), ep.lease.epoch)
    result.sort(key=lambda c: (c.scheduled_for, c.endpoint.id))  # RETURNING promises no order
    return result


def _baseline_source(baseline: object) -> PlanSource:
    if isinstance(baseline, IntervalSchedule):
        return PlanSource.BASELINE_INTERVAL
    return PlanSource.BASELINE_CRON


# The completion -----------------------------------------------------------------

JOB_REVISIONS = Sql(
    sqlite=f"SELECT id, revision FROM jobs WHERE id {_IN_IDS.sqlite}",  # noqa: S608
    # FOR SHARE: a job cannot change until the completion that checked it commits.
    postgres=f"SELECT id, revision FROM jobs WHERE id {_IN_IDS.postgres} FOR SHARE",  # noqa: S608
)
_JOINED = ", ".join([f"e.{c}" for c in ENDPOINT_COLUMNS] + [f"j.{c}" for c in JOB_COLUMNS])
CURRENT = Sql(
    sqlite=f"SELECT {_JOINED} FROM endpoints e JOIN jobs j ON j.id = e.job_id "  # noqa: S608
    f"WHERE e.id {_IN_IDS.sqlite}",
    postgres=f"SELECT {_JOINED} FROM endpoints e JOIN jobs j ON j.id = e.job_id "  # noqa: S608
    f"WHERE e.id {_IN_IDS.postgres} FOR UPDATE OF e",
)

_RUNS = ", ".join(RUN_COLUMNS)
_ON_CONFLICT = (
    # A zombie worker's real result replaces the 'lost' record the sweeper wrote;
    # any other conflict changes no row, which _insert_runs detects by the row count.
    "ON CONFLICT (endpoint_id, scheduled_for, attempt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS)
    + " WHERE runs.status IN ('lost', 'unknown')"
)
INSERT_RUNS = Batch(
    sqlite=f"INSERT INTO runs ({_RUNS}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "  # noqa: S608
    f"{_ON_CONFLICT}",
    postgres=Staged(
        "cadenza_runs_in",
        RUN_COLUMNS,
        tuple(runs.c[c] for c in RUN_COLUMNS),
        f"INSERT INTO runs ({_RUNS}) SELECT {_RUNS} FROM cadenza_runs_in {_ON_CONFLICT}",  # noqa: S608
    ),
)

_RELEASED = (
    "lease_owner = NULL, lease_until = NULL, lease_slot = NULL, lease_claimed_at = NULL, "
    "lease_started_at = NULL"
)
_FENCE = ("id", "lease_owner", "lease_epoch")


def _write_states(staging: str, fence: tuple[str, ...]) -> Batch:
    """Write ``STATE_COLUMNS`` and release the lease where the row matches ``fence``
    (parameters: the states, then the fence's values)."""
    own = " AND ".join(f"{c} = ?" for c in fence)
    staged = tuple(f"b_{c}" for c in fence)
    matched = " AND ".join(f"e.{c} = v.b_{c}" for c in fence)
    return Batch(
        sqlite=f"UPDATE endpoints SET {', '.join(f'{c} = ?' for c in STATE_COLUMNS)}, "  # noqa: S608
        f"{_RELEASED} WHERE {own}",
        postgres=Staged(
            staging,
            (*STATE_COLUMNS, *staged),
            tuple(endpoints.c[c] for c in (*STATE_COLUMNS, *fence)),
            f"UPDATE endpoints AS e SET {', '.join(f'{c} = v.{c}' for c in STATE_COLUMNS)}, "  # noqa: S608
            f"{_RELEASED} FROM {staging} AS v WHERE {matched}",
        ),
    )


COMPLETE = _write_states("cadenza_states_in", _FENCE)
COMPLETE_UNCHANGED = _write_states("cadenza_unchanged_in", (*_FENCE, "revision"))
BATCHES = (INSERT_RUNS, COMPLETE, COMPLETE_UNCHANGED)
"""Every batched write (PostgreSQL creates their staging tables per connection)."""

_OWNER = ENDPOINT_COLUMNS.index("lease_owner")
_EPOCH = ENDPOINT_COLUMNS.index("lease_epoch")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch encoded before its transaction: its runs, the replans of the claimed
    copies fenced on their revisions (``None``: ``complete_from_current`` decides) with the
    earliest next slot among them, and the revision of each job as the claims saw it."""

    runs: list[list[Any]]
    unchanged: list[list[Any]] | None
    earliest: datetime | None
    job_revisions: dict[str, int]


class Changed(Exception):
    """A job or an endpoint of the batch changed since its claim; raised to roll the
    transaction back."""


def state_params(d: Dialect, ep: Endpoint, fence: tuple[Any, ...]) -> list[Any]:
    """``ep``'s ``STATE_COLUMNS``, then ``fence``: a parameter row of ``COMPLETE*``."""
    values = STATE_PARAMS(endpoint_state(ep), d.ts_out)
    values.extend(fence)
    return values


def prepare(
    d: Dialect,
    in_flight: InFlight,
    worker_id: str,
    completions: Sequence[Completion],
    now: datetime,
) -> Prepared:
    """The CPU work of the completion, done without holding a transaction open."""
    runs = [RUN_PARAMS(Codec.run_row(c.run), d.ts_out) for c in completions]
    unchanged: list[list[Any]] | None = []
    slots: list[datetime] = []
    jobs: dict[str, int] = {}
    for done in completions:
        claim = done.claim
        claimed = in_flight.forget(claim.endpoint.id, claim.epoch)
        if (
            claimed is None  # claimed by another store object, or forgotten
            or unchanged is None
            or jobs.setdefault(claimed.job.id, claimed.job_revision) != claimed.job_revision
        ):
            unchanged = None
            continue
        replanned = lifecycle.after_run(claimed.endpoint, claimed.job, done.run, now)
        fenced = (claim.endpoint.id, worker_id, claim.epoch, claimed.revision)
        unchanged.append(state_params(d, replanned, fenced))
        if replanned.next_run_at is not None:
            slots.append(replanned.next_run_at)
    return Prepared(runs, unchanged, min(slots, default=None), jobs)


def complete_unchanged(d: Dialect, prepared: Prepared) -> Steps[Completed]:
    """Insert the runs and write the replanned copies, fenced on their revisions;
    raises ``Changed`` unless every job and every endpoint is as claimed."""
    states = prepared.unchanged
    if states is None:
        raise Changed
    current: list[Row] = yield Fetch(JOB_REVISIONS, (d.ids(list(prepared.job_revisions)),))
    if {r[0]: r[1] for r in current} != prepared.job_revisions:
        raise Changed
    yield from _insert_runs(prepared.runs)
    if (yield Write(COMPLETE_UNCHANGED, states)) != len(states):
        raise Changed
    return Completed([], prepared.earliest)


def complete_from_current(
    d: Dialect,
    codec: Codec,
    worker_id: str,
    completions: Sequence[Completion],
    prepared: Prepared,
    now: datetime,
) -> Steps[Completed]:
    """Insert the runs, re-read every endpoint and its job, replan, and write what is
    still ours."""
    yield from _insert_runs(prepared.runs)
    ids = [c.claim.endpoint.id for c in completions]
    rows: list[Row] = yield Fetch(CURRENT, (d.ids(ids),))
    current = {r[0]: r for r in rows}
    width = len(ENDPOINT_COLUMNS)
    jobs: dict[str, Any] = {}
    states: list[list[Any]] = []
    slots: list[datetime] = []
    lost: list[str] = []
    for done in completions:
        row = current.get(done.claim.endpoint.id)
        if row is None or row[_OWNER] != worker_id or row[_EPOCH] != done.claim.epoch:
            lost.append(done.claim.endpoint.id)
            continue
        job = jobs.get(row[_JOB_ID])
        if job is None:
            job = jobs[row[_JOB_ID]] = codec.job(row[width:], d.ts_in)
        replanned = lifecycle.after_run(codec.endpoint(row, d.ts_in), job, done.run, now)
        states.append(state_params(d, replanned, (replanned.id, worker_id, done.claim.epoch)))
        if replanned.next_run_at is not None:
            slots.append(replanned.next_run_at)
    if states:
        yield Write(COMPLETE, states)
    return Completed(lost, min(slots, default=None))


def _insert_runs(params: list[list[Any]]) -> Steps[None]:
    if (yield Write(INSERT_RUNS, params)) < len(params):
        raise errors.Conflict(
            "A run of this batch is already recorded for its endpoint, slot and attempt "
            "(only a 'lost' record may be replaced); nothing was written."
        )
