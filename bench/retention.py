"""Retention: what pruning a large run history costs the scheduler's punctuality.

One process runs what ``cadenza serve`` runs: a worker over ``--endpoints`` endpoints
(intervals uniform in 1–60 s, ~780 runs/s at 10k) calling a target server on
127.0.0.1 in another process, and the retention housekeeper (``Pruner``, the
production code with its production settings: batches of ``--batch`` rows, a
``--pause`` between them). The database is seeded with ``--runs`` runs 60 days old
and the tenant's policy keeps 30 days, so every seeded run is to be deleted.

The run is cut into phases of ``--phase-seconds``, alternating pruning off and on
(off first), until the seeded runs are all deleted or ``--max-phases`` have passed.
Lateness (``started_at − scheduled_for``) of the runs scheduled in each phase is read
from the runs table afterwards; the first phase is left out as warm-up, and so is an
"on" phase that found nothing left to delete. Printed: p99 lateness with pruning off
and on (pooled over their phases, and the median of the phases' p99s), the rows
deleted per second while on, and the ratio.

    .venv/bin/python bench/retention.py [--backend postgres|sqlite] [--runs 1000000]
        [--endpoints 10000] [--phase-seconds 10] [--max-phases 50]

Target: p99 lateness with pruning <= 1.5 x without (medians of phase p99s).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from benchkit import (
    CLOCK,
    TENANT,
    bench_settings,
    database,
    make_endpoint,
    make_job,
    pg_available,
    running,
    seed,
    target_process,
    verdict,
)
from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.retention_sql import SqlRetentionStore
from cadenza.bootstrap import configure_logging, install_uvloop, tune_gc
from cadenza.container import Runtime, build_runtime
from cadenza.domain.model import Endpoint, Job
from cadenza.domain.retention import RetentionPolicy
from cadenza.ids import floor_id
from cadenza.ports import NullObserver
from cadenza.scheduler.retention import Pruner, PrunerOptions

TARGET_RATIO = 1.5
SEED_CHUNK = 100_000
AGE = timedelta(days=60)
_COLUMNS = (
    "id, endpoint_id, job_id, tenant_id, scheduled_for, started_at, finished_at, status, "
    "source, attempt, missed_slots, http_status, error, worker_id"
)
_NUMBERED = (
    "(SELECT id, job_id, tenant_id, row_number() OVER (ORDER BY id) - 1 AS n FROM endpoints) e"
)


@dataclass(slots=True)
class Phase:
    pruning: bool
    start: datetime
    end: datetime
    deleted: int = 0


@dataclass(slots=True)
class Outcome:
    phases: list[Phase] = field(default_factory=list)
    seeded: int = 0
    seed_seconds: float = 0.0


def _seed_sql(pg: bool) -> sa.TextClause:
    """Runs ``lo..hi``, spread over the endpoints, each one second after the last."""
    if pg:
        at = ":t0 + make_interval(secs => g)"
        ident = ":prefix || lpad(g::text, 16, '0')"
        source = "generate_series(:lo, :hi) AS g"
        head = ""
    else:
        at = ":t0 + g * 1000000"
        ident = ":prefix || printf('%016d', g)"
        source = "s"
        head = "WITH RECURSIVE s(g) AS (SELECT :lo UNION ALL SELECT g + 1 FROM s WHERE g < :hi) "
    return sa.text(
        f"{head}INSERT INTO runs ({_COLUMNS}) SELECT {ident}, e.id, e.job_id, e.tenant_id, "
        f"{at}, {at}, {at}, 'success', 'baseline-interval', 1, 0, 200, '', 'seed' "
        f"FROM {source} JOIN {_NUMBERED} ON e.n = g % :count"
    )


async def seed_runs(store: SqlStore, runs: int, endpoints: int, now: datetime) -> None:
    pg = store.dialect.name == "postgresql"
    old = now - AGE - timedelta(seconds=runs)
    prefix = floor_id("run", old)[:14]
    t0 = old if pg else int(old.timestamp() * 1_000_000)
    statement = _seed_sql(pg)
    for lo in range(0, runs, SEED_CHUNK):
        hi = min(runs, lo + SEED_CHUNK) - 1
        params = {"t0": t0, "prefix": prefix, "lo": lo, "hi": hi, "count": endpoints}
        async with store.engine.begin() as conn:
            await conn.execute(statement, params)
    if pg:
        async with store.engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                sa.text("VACUUM ANALYZE runs")
            )


def _endpoints(job: Job, size: int, url: str, now: datetime, start: datetime) -> list[Endpoint]:
    rng = random.Random(size)
    made = []
    for _ in range(size):
        every = timedelta(seconds=rng.randint(1, 60))
        made.append(make_endpoint(job, url, now, every, start + every * rng.random()))
    return made


class Tally(NullObserver):
    """Counts the rows the pruner reports deleting, batch by batch."""

    def __init__(self) -> None:
        self.deleted = 0

    def pruned(self, kind: str, count: int) -> None:
        self.deleted += count


async def drive_phases(
    pruner: Pruner, tally: Tally, args: argparse.Namespace, seeded: int
) -> list[Phase]:
    """Alternate pruning off and on, phase by phase, while ``pruner`` prunes."""
    phases: list[Phase] = []

    async def prune_forever() -> None:
        for _ in range(1_000_000):  # bounded; cancelled when the phases end
            done = await pruner.prune_all()
            if not done.runs:
                await asyncio.sleep(0.2)

    task = asyncio.create_task(prune_forever())
    try:
        for index in range(args.max_phases):
            on = index % 2 == 1
            if on:
                pruner.resumed.set()
            else:
                pruner.resumed.clear()
            before, start = tally.deleted, CLOCK.now()
            await asyncio.sleep(args.phase_seconds)
            phases.append(Phase(on, start, CLOCK.now(), tally.deleted - before))
            if tally.deleted >= seeded:
                break
    finally:
        pruner.stop()
        task.cancel()
        [failure] = await asyncio.gather(task, return_exceptions=True)
    if isinstance(failure, Exception):
        print(f"    pruning failed: {type(failure).__name__}: {failure}", flush=True)
    return phases


async def lateness_ms(store: SqlStore, phase: Phase) -> list[float]:
    pg = store.dialect.name == "postgresql"
    delta = (
        "EXTRACT(EPOCH FROM started_at - scheduled_for) * 1000000"
        if pg
        else ("started_at - scheduled_for")
    )
    sql = sa.text(
        f"SELECT {delta} FROM runs WHERE worker_id != 'seed' AND status != 'lost' "
        "AND scheduled_for >= :since AND scheduled_for < :until"
    )
    ts = store.dialect.ts_out
    async with store.engine.connect() as conn:
        rows = await conn.execute(sql, {"since": ts(phase.start), "until": ts(phase.end)})
        return sorted(float(r[0]) / 1000 for r in rows)


def p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.99 * len(values)))] if values else float("nan")


async def measure(args: argparse.Namespace) -> None:
    with target_process() as target, database(args.backend) as url:
        settings = bench_settings(url, concurrency=512)
        async with build_runtime(settings) as runtime:
            outcome = await _run(args, runtime, settings, f"{target}/ok")
            store = runtime.store
            assert isinstance(store, SqlStore)
            await _report(args, store, outcome)


async def _run(args: argparse.Namespace, runtime: Runtime, settings: object, url: str) -> Outcome:
    store = runtime.store
    assert isinstance(store, SqlStore)
    now = CLOCK.now()
    job = make_job(now)
    start = now + timedelta(seconds=max(8.0, args.endpoints / 2500))
    await seed(runtime, job, _endpoints(job, args.endpoints, url, now, start))
    began = CLOCK.monotonic()
    await seed_runs(store, args.runs, args.endpoints, now)
    outcome = Outcome(seeded=args.runs, seed_seconds=CLOCK.monotonic() - began)
    retention = SqlRetentionStore(store)
    await retention.put_policy(RetentionPolicy(TENANT, run_days=30))
    options = PrunerOptions(batch=args.batch, pause=args.pause)
    tally = Tally()
    pruner = Pruner(retention, CLOCK, tally, options)
    tune_gc()
    async with running(settings, runtime):  # type: ignore[arg-type]
        wait = (start - CLOCK.now()).total_seconds() + args.warmup
        await asyncio.sleep(max(0.0, wait))
        outcome.phases = await drive_phases(pruner, tally, args, args.runs)
    return outcome


async def _report(args: argparse.Namespace, store: SqlStore, outcome: Outcome) -> None:
    # The first phase warms up; an "on" phase that found nothing left is not pruning.
    measured = [p for p in outcome.phases[1:] if p.deleted or not p.pruning]
    by_mode: dict[bool, list[float]] = {False: [], True: []}
    phase_p99: dict[bool, list[float]] = {False: [], True: []}
    for phase in measured:
        values = await lateness_ms(store, phase)
        by_mode[phase.pruning].extend(values)
        phase_p99[phase.pruning].append(p99(values))
    on_seconds = sum((p.end - p.start).total_seconds() for p in outcome.phases if p.pruning)
    deleted = sum(p.deleted for p in outcome.phases)
    print(
        f"{args.backend}: {args.endpoints} endpoints, {outcome.seeded} old runs seeded in "
        f"{outcome.seed_seconds:.0f} s; {len(outcome.phases)} phases of {args.phase_seconds:g} s"
    )
    print(
        f"    pruned {deleted} runs in {on_seconds:.0f} s of pruning "
        f"({deleted / on_seconds if on_seconds else 0:.0f} rows/s, batch {args.batch}, "
        f"pause {args.pause * 1000:g} ms)" + ("" if deleted >= outcome.seeded else " - NOT ALL")
    )
    for mode, label in ((False, "without pruning"), (True, "with pruning   ")):
        values = sorted(by_mode[mode])
        print(
            f"    {label}: {len(values)} runs, lateness p50 {_p(values, 0.5):.2f} ms, pooled p99 "
            f"{p99(values):.2f} ms, median of phase p99s {_median(phase_p99[mode]):.2f} ms "
            f"(phases: {', '.join(f'{v:.1f}' for v in phase_p99[mode])})"
        )
    ratio = _median(phase_p99[True]) / _median(phase_p99[False])
    print(f"    ratio with/without {ratio:.2f} (target <= {TARGET_RATIO}: "
          f"{verdict(ratio <= TARGET_RATIO)})", flush=True)  # fmt: skip


def _p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="postgres", choices=("postgres", "sqlite"))
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--phase-seconds", type=float, default=10.0)
    parser.add_argument("--max-phases", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=PrunerOptions().batch)
    parser.add_argument("--pause", type=float, default=PrunerOptions().pause)
    args = parser.parse_args()
    if args.backend == "postgres" and not pg_available():
        print("No PostgreSQL on 127.0.0.1:5432; using SQLite.")
        args.backend = "sqlite"
    configure_logging(level="warning")
    install_uvloop()
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
