"""Fleet: three ``cadenza worker`` processes sharing one PostgreSQL table.

Each repetition seeds ``--endpoints`` endpoints on a 1 s interval (first slots spread
over a second, so the demand is even), lets three worker processes run them for
``--seconds``, stops them with SIGTERM and reads the run rows:

* duplicates: a slot recorded twice (must be 0: correctness, also a test);
* missed: slots that came due but were not run on their own, either absent or
  merged into a late run (``missed_slots``);
* share: runs recorded per second over slots due per second, the fleet's rate as a
  ratio to the demand of the same run;
* lateness p50/p99 of ``started_at − scheduled_for``;
* fair share: the part of the runs each worker ran (issue #17.7: one worker once held
  every lease). Target: each within ±25 % of a third.

The target server runs in its own process; everything is on 127.0.0.1. The first
``--warmup`` seconds are left out (workers are still claiming their first batches).

    .venv/bin/python bench/fleet.py [--endpoints 2000] [--seconds 20] [--repeat 3]
    .venv/bin/python bench/fleet.py --endpoints 300 --longest 5   # issue #17.7's load

``--longest N`` gives the endpoints intervals of 1 to N seconds (in turn) instead of 1 s:
a load one worker could carry alone, where the one whose completions free slots
used to claim them all back.

Target: share 1.00 and 0 missed at 2,000 runs/s; duplicates 0 always. On a shared
2-core machine three workers have been seen to manage about 1,800 of 2,000 runs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from benchkit import (
    CLOCK,
    bench_settings,
    database,
    make_endpoint,
    make_job,
    median,
    pg_available,
    seed,
    target_process,
    verdict,
)
from cadenza.adapters.wakeups import libpq_url
from cadenza.bootstrap import configure_logging
from cadenza.container import build_runtime

WORKERS = 3
SECOND = timedelta(seconds=1)
START_TIMEOUT = 60.0
"""Seconds the workers get to register: a hang guard."""


@dataclass(frozen=True)
class Outcome:
    due: int
    runs: int
    duplicates: int
    missed: int
    lateness_ms: list[float]
    by_worker: dict[str, int]

    @property
    def share(self) -> float:
        return self.runs / self.due if self.due else float("nan")


async def spawn(url: str, secret: str, workdir: Path, name: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "CADENZA_DATABASE_URL": url,
        "CADENZA_SECRET_KEY": secret,
        "CADENZA_SSRF_ALLOWLIST": '["127.0.0.1/32"]',
        "CADENZA_WORKER_ID": name,
        "CADENZA_MAX_PER_HOST": "512",
        "CADENZA_LOG_LEVEL": "warning",
    }
    with (workdir / f"{name}.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cadenza.cli", "worker", env=env, cwd=workdir, stdout=log,
            stderr=log, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


async def registered(url: str, count: int) -> None:
    deadline = CLOCK.monotonic() + START_TIMEOUT
    while CLOCK.monotonic() < deadline:
        async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
            row = await (await conn.execute("SELECT count(*) FROM workers")).fetchone()
        if row is not None and row[0] >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{count} workers did not register within {START_TIMEOUT} s")


def due_slots(
    first: datetime, begin: datetime, end: datetime, every: timedelta = SECOND
) -> set[datetime]:
    """The ``every`` lattice from ``first``, within ``[begin, end)``."""
    slot = first if first >= begin else first + -((first - begin) // every) * every
    slots = set()
    while slot < end:
        slots.add(slot)
        slot += every
    return slots


def outcome(
    url: str,
    firsts: dict[str, tuple[datetime, timedelta]],
    window: tuple[datetime, datetime],
) -> Outcome:
    """Score the slots due in ``window`` from the run rows."""
    begin, end = window
    slots: dict[str, list[datetime]] = defaultdict(list)
    late: list[float] = []
    merged = 0
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT endpoint_id, scheduled_for, started_at, missed_slots, worker_id FROM runs "
            "WHERE scheduled_for >= %(begin)s AND scheduled_for < %(end)s",
            {"begin": begin, "end": end},
        )
        by_worker: dict[str, int] = defaultdict(int)
        for endpoint_id, slot, started, missed, worker in rows:
            by_worker[worker] += 1
            slots[endpoint_id].append(slot)
            late.append((started - slot).total_seconds() * 1000)
            merged += missed
    due = absent = duplicates = 0
    for endpoint_id, (first, every) in firsts.items():
        wanted = due_slots(first, begin, end, every)
        ran = slots[endpoint_id]
        due += len(wanted)
        duplicates += len(ran) - len(set(ran))
        absent += len(wanted - set(ran))
    runs = sum(len(v) for v in slots.values())
    return Outcome(due, runs, duplicates, absent + merged, late, dict(by_worker))


def worker_parts(got: Outcome) -> list[float]:
    """Each worker's part of the runs as a ratio to a fair third (1.00: exactly)."""
    names = [f"fleet-{i}" for i in range(WORKERS)]
    total = sum(got.by_worker.values()) or 1
    return [got.by_worker.get(n, 0) * WORKERS / total for n in names]


def interval(i: int, longest: int) -> timedelta:
    return SECOND * (1 + i % longest)


async def repetition(
    target: str, count: int, seconds: float, warmup: float, longest: int
) -> Outcome:
    with database("postgres") as url, tempfile.TemporaryDirectory() as workdir:
        settings = bench_settings(url, concurrency=512)
        async with build_runtime(settings) as runtime:
            workers = [
                await spawn(url, settings.secret_key, Path(workdir), f"fleet-{i}")
                for i in range(WORKERS)
            ]
            try:
                await registered(url, WORKERS)
                now = CLOCK.now()
                job = make_job(now)
                first = now + 5 * SECOND  # seeding 2,000 rows takes well under that
                phase = SECOND / 1000
                endpoints = [
                    make_endpoint(
                        job, f"{target}/ok", now, interval(i, longest), first + i % 1000 * phase
                    )
                    for i in range(count)
                ]
                await seed(runtime, job, endpoints)
                await asyncio.sleep(
                    (first + timedelta(seconds=seconds) - CLOCK.now()).total_seconds()
                )
                stopped = CLOCK.now()
            finally:
                await stop(workers)
        window = (first + timedelta(seconds=warmup), stopped - SECOND)
        firsts = {
            e.id: (e.next_run_at, interval(i, longest))
            for i, e in enumerate(endpoints)
            if e.next_run_at is not None
        }
        return outcome(url, firsts, window)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--longest", type=int, default=1, help="intervals 1..N s")
    args = parser.parse_args()
    configure_logging(level="warning")
    if not pg_available():
        sys.exit("bench/fleet.py needs the PostgreSQL server at 127.0.0.1:5432")
    rate = sum(1 / interval(i, args.longest).total_seconds() for i in range(args.endpoints))
    every = "every second" if args.longest == 1 else f"every 1 to {args.longest} s"
    print(
        f"{WORKERS} workers, {args.endpoints} endpoints {every} ({rate:.0f} runs/s), "
        f"{args.seconds:g} s per repetition, {args.repeat} repetitions"
    )
    shares, missed, duplicates, p50s, p99s = [], [], [], [], []
    worst: list[float] = []
    with target_process() as target:
        for i in range(args.repeat):
            got = asyncio.run(
                repetition(target, args.endpoints, args.seconds, args.warmup, args.longest)
            )
            p50, p99 = percentile(got.lateness_ms, 50), percentile(got.lateness_ms, 99)
            shares.append(got.share)
            missed.append(got.missed)
            duplicates.append(got.duplicates)
            p50s.append(p50)
            p99s.append(p99)
            parts = worker_parts(got)
            worst.append(max(abs(p - 1) for p in parts))
            print(
                f"  run {i + 1}: {got.runs}/{got.due} slots, share {got.share:.3f}, "
                f"missed {got.missed}, duplicates {got.duplicates}, "
                f"lateness p50 {p50:.1f} ms p99 {p99:.1f} ms, "
                f"each worker's part of a fair third {' / '.join(f'{p:.2f}' for p in parts)}",
                flush=True,
            )
    share = median(shares)
    print(
        f"median share {share:.3f} (target 1.00: {verdict(share >= 0.999)}), "
        f"missed {median(missed):.0f} (target 0: {verdict(median(missed) == 0)}), "
        f"duplicates {max(duplicates)} (must be 0: {verdict(max(duplicates) == 0)}), "
        f"lateness p50 {median(p50s):.1f} ms p99 {median(p99s):.1f} ms"
    )
    spread = max(worst)
    print(
        f"fair share: the furthest worker ran {spread:.0%} off a third "
        f"(target each within ±25 % of a third: {verdict(spread <= 0.25)})"
    )


if __name__ == "__main__":
    main()
