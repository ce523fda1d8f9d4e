"""Claim throughput: drain a due backlog with batched claim + complete.

Seeds ``--rows`` endpoints (default 100,000), half of them due, then drains the due
half in batches of ``--batch`` (claim, build a successful run per claim, complete)
and reports, per backend, the median over ``--repeat`` fresh databases of:

* rows/s over the whole drain (target ≥ 20,000 rows/s);
* the mean claim time over the first and the last 10% of batches: the claim uses a
  partial index over unleased rows, so the last batches (after 45k leases and
  replans) should cost about the same as the first (target: within 2×).

Both ways of draining are measured, one after the other, and reported apiece:

* sequential: each batch is completed before the next is claimed, so the rate is
  the plain sum of one batch's costs (what the per-phase figures add up to);
* overlapped: a batch's completion runs while the next batch is claimed (one
  completion in flight), as the scheduler's separate claim loop and completer do
  (``cadenza.scheduler``); a claim's time then includes waiting for the completion
  ahead of it on SQLite's write lock. It is the faster mode on both backends: the
  database works on one batch (PostgreSQL's server; on SQLite the store's hot
  writer thread, ``sqlite.HotWriter``, which leaves the GIL inside SQLite) while the
  event loop decodes or replans another.

The targets apply to both modes. ``--sequential`` or ``--overlap`` measures one.

Beside the store, each backend's *floor* is measured on as many fresh databases
(``bench/floor.py``; ``--no-floor`` skips it): the same statements, schema and pragmas
from a plain synchronous driver, with no decoding or replanning. It is what the
database engine and its driver cost on this host for the store's work, and the
store's rate over it (printed for each drain mode) is the share of that ceiling the
store reaches. The floor drains sequentially: an overlapped drain can pass it.

Each drain runs under the garbage-collector settings of ``cadenza worker``
(``bootstrap.tune_gc``), the process whose claims it stands for.

Run: ``.venv/bin/python bench/claim.py [--sqlite-only] [--rows N] [--batch N]
[--repeat N] [--sequential | --overlap] [--no-floor]``.
PostgreSQL is measured on 127.0.0.1:5432 (user postgres, a scratch database that
is dropped afterwards) and skipped with a message when no server answers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

import floor
from benchkit import pg_available
from cadenza.adapters.clock import SystemClock
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate, open_store
from cadenza.bootstrap import tune_gc
from cadenza.domain.model import Endpoint, Job, Method, PlanSource, Request, Run, RunStatus
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import Claim, Completion

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")
TARGET_ROWS_PER_S = 20_000
TARGET_DRIFT = 2.0
CLOCK = SystemClock()


@dataclass(frozen=True)
class Result:
    rows: int
    seconds: float
    cpu_seconds: float
    first_claim_ms: float
    last_claim_ms: float

    @property
    def cpu_us_per_row(self) -> float:
        return self.cpu_seconds / self.rows * 1e6

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def drift(self) -> float:
        return self.last_claim_ms / self.first_claim_ms


def build(rows: int) -> tuple[Job, list[Endpoint]]:
    """Half due in the last minute, half due tomorrow; distinct URLs, hourly cadence."""
    job = Job(new_id("job", NOW), "usr_bench", "bench", NOW, NOW)
    eps = []
    for i in range(rows):
        due = NOW - timedelta(seconds=i % 60) if i % 2 == 0 else NOW + timedelta(days=1)
        eps.append(
            Endpoint(
                id=new_id("ept", NOW),
                job_id=job.id,
                tenant_id=job.tenant_id,
                name=f"endpoint {i}",
                request=Request(Method.GET, f"https://svc{i % 97}.example.com/health/{i}"),
                baseline=IntervalSchedule(timedelta(hours=1)),
                created_at=NOW - timedelta(days=1),
                updated_at=NOW - timedelta(days=1),
                next_run_at=due,
                next_run_source=PlanSource.BASELINE_INTERVAL,
            )
        )
    return job, eps


async def seed(store: SqlStore, job: Job, eps: list[Endpoint]) -> None:
    async with store.transaction() as tx:
        await tx.insert_job(job)
    for start in range(0, len(eps), 5000):
        await store.import_endpoints(eps[start : start + 5000])


def completions(claims: list[Claim]) -> list[Completion]:
    """A successful run per claim, as the dispatcher would report it."""
    return [
        Completion(
            c,
            Run(
                id=new_id("run", NOW),
                endpoint_id=c.endpoint.id,
                job_id=c.endpoint.job_id,
                tenant_id=c.endpoint.tenant_id,
                scheduled_for=c.scheduled_for,
                started_at=NOW,
                finished_at=NOW + timedelta(milliseconds=30),
                status=RunStatus.SUCCESS,
                source=c.source,
                attempt=c.attempt,
                http_status=200,
                worker_id="bench",
            ),
        )
        for c in claims
    ]


async def complete(store: SqlStore, claims: list[Claim]) -> None:
    lost = (await store.complete("bench", completions(claims), NOW + timedelta(seconds=1))).lost
    assert not lost, lost


async def drain(store: SqlStore, batch: int, *, overlap: bool = False) -> Result:
    """Claims and completes batch after batch; see the module docstring for ``overlap``."""
    claim_times: list[float] = []
    rows = 0
    pending: asyncio.Task[None] | None = None
    tune_gc()  # the collector settings of `cadenza worker`, whose claims this measures
    cpu_started = time.process_time()
    started = CLOCK.monotonic()
    while True:
        t0 = CLOCK.monotonic()
        claims = await store.claim_due(
            "bench", NOW, lookahead=timedelta(0), limit=batch, lease_margin=timedelta(seconds=5)
        )
        claim_times.append(CLOCK.monotonic() - t0)
        if pending is not None:
            await pending
            pending = None
        if not claims:
            claim_times.pop()
            break
        pending = asyncio.create_task(complete(store, claims))
        if not overlap:
            await pending
            pending = None
        rows += len(claims)
    seconds = CLOCK.monotonic() - started
    cpu = time.process_time() - cpu_started
    tenth = max(1, len(claim_times) // 10)
    first = statistics.fmean(claim_times[:tenth]) * 1000
    last = statistics.fmean(claim_times[-tenth:]) * 1000
    return Result(rows, seconds, cpu, first, last)


async def one_run(url: str, rows: int, batch: int, overlap: bool = False) -> Result:
    store = await seeded(url, rows)
    try:
        result = await drain(store, batch, overlap=overlap)
        assert result.rows == (rows + 1) // 2, result.rows
        return result
    finally:
        await store.close()


async def seeded(url: str, rows: int) -> SqlStore:
    """A store on a freshly migrated database holding ``build(rows)``."""
    migrate(url)
    store = await open_store(url, FernetSecretBox(FernetSecretBox.generate_key()))
    try:
        job, eps = build(rows)
        await seed(store, job, eps)
    except BaseException:
        await store.close()
        raise
    return store


@dataclass(frozen=True)
class Floor:
    rows: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def server_us_per_row(self) -> float:
        """PostgreSQL: the time per row that this process did not spend computing:
        the server's, but for the round trips' latency."""
        return (self.seconds - self.cpu_seconds) / self.rows * 1e6


async def floor_run(url: str, rows: int, batch: int) -> Floor:
    """``floor`` draining a database seeded as for ``one_run``."""
    await (await seeded(url, rows)).close()
    if url.startswith("sqlite"):
        drained = Floor(*await floor.drain_sqlite(floor.sqlite_path(url), NOW, batch))
    else:
        drained = Floor(*await floor.drain_pg(floor.pg_dsn(url), NOW, batch))
    assert drained.rows == (rows + 1) // 2, drained
    return drained


class OnFresh(Protocol):
    """Runs ``run(url)`` on ``repeat`` fresh databases of one backend."""

    async def __call__(self, run: Callable[[str], Awaitable[Any]], repeat: int) -> list[Any]: ...


def sqlite_urls(repeat: int, workdir: Path) -> list[str]:
    return [f"sqlite+aiosqlite:///{workdir / f'bench{i}.db'}" for i in range(repeat)]


async def on_scratch_pg(run: Callable[[str], Awaitable[T]], repeat: int) -> list[T]:
    """``run(url)`` on ``repeat`` scratch PostgreSQL databases, each dropped after."""
    results = []
    for _ in range(repeat):
        name = f"cadenza_bench_{secrets.token_hex(4)}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        try:
            results.append(await run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
        finally:
            with psycopg.connect(
                "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
            ) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


def report(backend: str, overlap: bool, results: list[Result]) -> None:
    rate = statistics.median(r.rate for r in results)
    first = statistics.median(r.first_claim_ms for r in results)
    last = statistics.median(r.last_claim_ms for r in results)
    drift = statistics.median(r.drift for r in results)
    runs = ", ".join(f"{r.rate:,.0f}" for r in results)
    cpu = statistics.median(r.cpu_us_per_row for r in results)
    ok_rate = "ok" if rate >= TARGET_ROWS_PER_S else "MISSED"
    ok_drift = "ok" if drift <= TARGET_DRIFT else "MISSED"
    mode = "overlapped" if overlap else "sequential"
    print(f"\n{backend}, {mode}: {len(results)} runs, {results[0].rows:,} due rows each")
    print(f"  drain rate      {rate:>10,.0f} rows/s   target >= {TARGET_ROWS_PER_S:,}  [{ok_rate}]")
    print(f"                  (runs: {runs})")
    print(f"  client CPU       {cpu:>8.1f} us/row (this process: decode, replan, encode)")
    print(f"  claim, first 10% {first:>8.2f} ms/batch")
    print(f"  claim, last 10%  {last:>8.2f} ms/batch")
    print(f"  last/first       {drift:>8.2f} x        target <= {TARGET_DRIFT:.0f}x  [{ok_drift}]")


def report_floor(backend: str, floors: list[Floor], drains: dict[bool, list[Result]]) -> None:
    """The floor's median rate, and each drain mode's median as a share of it."""
    rate = statistics.median(f.rate for f in floors)
    runs = ", ".join(f"{f.rate:,.0f}" for f in floors)
    print(f"\n{backend}, floor (the store's statements alone, bench/floor.py):")
    print(f"  drain rate      {rate:>10,.0f} rows/s   (runs: {runs})")
    for overlap, results in drains.items():
        share = statistics.median(r.rate for r in results) / rate
        mode = "overlapped" if overlap else "sequential"
        print(f"  store/floor      {share:>8.2f}          ({mode} drain over the floor)")
    if "PostgreSQL" in backend:
        server = statistics.median(f.server_us_per_row for f in floors)
        print(
            f"  server time      {server:>8.1f} us/row (floor time less its client CPU): "
            f"one backend at a time drains at most {1e6 / server:,.0f} rows/s"
        )
    if rate < TARGET_ROWS_PER_S:
        print(f"  the floor itself is below the {TARGET_ROWS_PER_S:,} rows/s target on this host")


def calibrate() -> float:
    """Microseconds for ``sum(range(1000))``, best of 50: about 8 on an idle modern core."""
    best = float("inf")
    for _ in range(50):
        t0 = CLOCK.monotonic()
        sum(range(1000))
        best = min(best, CLOCK.monotonic() - t0)
    return best * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="endpoints seeded (half due)")
    parser.add_argument("--batch", type=int, default=1000, help="claim/complete batch size")
    parser.add_argument("--repeat", type=int, default=3, help="fresh databases per backend")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor (floor.py)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--sequential", action="store_true", help="measure sequential only")
    modes.add_argument("--overlap", action="store_true", help="measure overlapped only")
    args = parser.parse_args()
    overlaps = [False] if args.sequential else [True] if args.overlap else [False, True]
    print(f"Draining {args.rows // 2:,} due of {args.rows:,} endpoints, batch {args.batch}")
    print(
        f"CPU calibration: sum(range(1000)) = {calibrate():.1f} us "
        "(about 8 us on an idle modern x86 core; scale the figures below accordingly)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        urls = iter(sqlite_urls(args.repeat * 3, Path(tmp)))

        async def on_sqlite(run: Callable[[str], Awaitable[T]], repeat: int) -> list[T]:
            return [await run(next(urls)) for _ in range(repeat)]

        await bench_backend("SQLite (aiosqlite, WAL)", on_sqlite, args, overlaps)
    if args.sqlite_only:
        return
    if not pg_available():
        print("\nPostgreSQL: skipped, no server answers on 127.0.0.1:5432")
        return
    await bench_backend("PostgreSQL (psycopg 3)", on_scratch_pg, args, overlaps)


async def bench_backend(
    backend: str, on_fresh: OnFresh, args: argparse.Namespace, overlaps: list[bool]
) -> None:
    """Each drain mode, then the floor, on ``args.repeat`` fresh databases apiece."""
    drains: dict[bool, list[Result]] = {}
    for overlap in overlaps:
        drain_one = functools.partial(one_run, rows=args.rows, batch=args.batch, overlap=overlap)
        drains[overlap] = await on_fresh(drain_one, args.repeat)
        report(backend, overlap, drains[overlap])
    if not args.no_floor:
        floor_one = functools.partial(floor_run, rows=args.rows, batch=args.batch)
        report_floor(backend, await on_fresh(floor_one, args.repeat), drains)


if __name__ == "__main__":
    asyncio.run(main())
