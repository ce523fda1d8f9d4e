"""Lateness: how close to its slot each run starts, and what the worker costs.

For each size (10k and 100k endpoints by default): endpoints on intervals drawn
uniformly from 1–60 s, first slots spread over each interval, one ``cadenza worker``
process and a target server in another process, for ``--seconds`` (60 by default).
From the run rows: lateness (``started_at − scheduled_for``) p50/p99/max, starts more
than 2 ms early, and the worker's peak RSS (``VmRSS`` from ``/proc/<pid>/status``).
Runs of the first ``--warmup`` seconds are left out (the worker is still starting).
The worker's CPU time per run and its share of one core tell a worker that needs
more CPU than one core (share near 100%) from one starved by other processes on a
shared machine (share well below, yet behind).

    .venv/bin/python bench/lateness.py [--sizes 10000,100000] [--seconds 60]

Targets: p99 <= 10 ms at 10k and <= 20 ms at 100k; zero early starts; RSS <= 100 MB
at 100k. Uniform 1–60 s intervals mean about 0.078 runs/s per endpoint: 780 runs/s
at 10k, 7,800 runs/s at 100k.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from benchkit import (
    CLOCK,
    bench_settings,
    database,
    make_endpoint,
    make_job,
    pg_available,
    seed,
    target_process,
    verdict,
)
from cadenza.bootstrap import configure_logging
from cadenza.container import build_runtime
from cadenza.domain.model import Endpoint, Job

P99_TARGET_MS = {10_000: 10.0, 100_000: 20.0}
RSS_TARGET_MB = 100.0
EARLY = timedelta(milliseconds=2)


def worker_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, from ``/proc/<pid>/stat``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def spawn_worker(
    db_url: str, secret_key: str, concurrency: int, log: IO[bytes] | None
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "CADENZA_DATABASE_URL": db_url,
        "CADENZA_SECRET_KEY": secret_key,
        "CADENZA_SSRF_ALLOWLIST": '["127.0.0.1/32"]',
        "CADENZA_MAX_CONCURRENCY": str(concurrency),
        # One target host: let the global cap govern, as a fleet of hosts would.
        "CADENZA_MAX_PER_HOST": str(concurrency),
        "CADENZA_LOG_LEVEL": "info" if log else "warning",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cadenza.cli",
        "worker",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stderr=log,
    )


def lateness_query(pg: bool) -> sa.TextClause:
    # SQLite keeps epoch microseconds; PostgreSQL keeps timestamptz.
    delta = (
        "EXTRACT(EPOCH FROM started_at - scheduled_for) * 1000000"
        if pg
        else "started_at - scheduled_for"
    )
    return sa.text(
        f"SELECT {delta} FROM runs WHERE status != 'lost' "
        "AND scheduled_for >= :since AND scheduled_for < :until"
    )


async def measure(
    kind: str, size: int, seconds: float, warmup: float, concurrency: int, log: IO[bytes] | None
) -> None:
    with target_process() as target, database(kind) as db_url:
        settings = bench_settings(db_url, concurrency=concurrency)
        async with build_runtime(settings) as runtime:
            # The worker boots while the rows are written; the first slots come after
            # both (building and inserting 100k rows takes tens of seconds here).
            worker = await spawn_worker(db_url, settings.secret_key, concurrency, log)
            now = CLOCK.now()
            start = now + timedelta(seconds=max(8.0, size / 2500))
            job = make_job(now)
            await seed(runtime, job, _endpoints(job, size, f"{target}/ok", now, start))
            late_seed = (CLOCK.now() - start).total_seconds()
            cpu, since = worker_cpu_seconds(worker.pid), CLOCK.now()
            peak_rss, noise = await _watch(worker.pid, start + timedelta(seconds=seconds))
            cpu = Cpu(worker_cpu_seconds(worker.pid) - cpu, (CLOCK.now() - since).total_seconds())
            worker.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(worker.wait(), 60)
            window = (start + timedelta(seconds=warmup), start + timedelta(seconds=seconds))
            values = await _lateness(runtime, window)
            overdue = await _overdue(runtime, window[1])
            cpu.runs = await _runs_since(runtime, since)
    _report(kind, size, seconds, values, peak_rss, code, late_seed)
    print(
        f"    worker CPU {cpu.seconds:.1f} s in {cpu.wall:.0f} s ({cpu.seconds / cpu.wall:.0%} of "
        f"one core), {cpu.per_run_us():.0f} µs per run over {cpu.runs} runs",
        flush=True,
    )
    if overdue:
        print(f"    behind: {overdue} endpoints had a slot due before the end that never started")
    if noise:
        p99 = noise[min(len(noise) - 1, int(0.99 * len(noise)))] * 1000
        print(
            f"    machine noise: an idle process's 10 ms timer overshoots p99 {p99:.1f} ms, "
            f"max {noise[-1] * 1000:.1f} ms",
            flush=True,
        )


@dataclass(slots=True)
class Cpu:
    """The worker's CPU time while watched, and the runs it started meanwhile."""

    seconds: float
    wall: float
    runs: int = 0

    def per_run_us(self) -> float:
        return self.seconds / self.runs * 1e6 if self.runs else float("nan")


def _endpoints(job: Job, size: int, url: str, now: datetime, start: datetime) -> list[Endpoint]:
    """Intervals uniform in 1–60 s, first slots uniform within the first interval."""
    rng = random.Random(size)
    endpoints = []
    for _ in range(size):
        every = timedelta(seconds=rng.randint(1, 60))
        endpoints.append(make_endpoint(job, url, now, every, start + every * rng.random()))
    return endpoints


async def _watch(pid: int, until: datetime) -> tuple[float, list[float]]:
    """Until ``until``: the worker's peak RSS (sampled every 0.5 s), and this idle
    process's own timer overshoots (sampled every 10 ms) as a measure of how much
    the machine itself delays a process that asks to wake up."""
    peak = 0.0
    lags: list[float] = []
    next_rss = CLOCK.monotonic()
    while CLOCK.now() < until:
        if CLOCK.monotonic() >= next_rss:
            peak = max(peak, worker_rss_mb(pid))
            next_rss += 0.5
        before = CLOCK.monotonic()
        await asyncio.sleep(0.01)
        lags.append(CLOCK.monotonic() - before - 0.01)
    return peak, sorted(lags)


def _timestamps(runtime: object) -> tuple[Any, Callable[[Any], Any]]:
    """The runtime's store, and how a timestamp is bound as a parameter there."""
    store = runtime.store  # type: ignore[attr-defined]
    return store, store.dialect.ts_out


async def _lateness(runtime: object, window: tuple[datetime, datetime]) -> list[int]:
    store, ts = _timestamps(runtime)
    params = {"since": ts(window[0]), "until": ts(window[1])}
    async with store.engine.connect() as conn:
        rows = await conn.execute(lateness_query(store.dialect.name == "postgresql"), params)
        return sorted(int(r[0]) for r in rows)


async def _count(runtime: object, sql: str, bound: datetime) -> int:
    """``sql``'s single count, with ``:bound`` set to ``bound``."""
    store, ts = _timestamps(runtime)
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.text(sql), {"bound": ts(bound)})).scalar_one())


async def _overdue(runtime: object, until: datetime) -> int:
    """Endpoints whose next slot came before ``until`` (the worker fell behind)."""
    return await _count(runtime, "SELECT count(*) FROM endpoints WHERE next_run_at < :bound", until)


async def _runs_since(runtime: object, since: datetime) -> int:
    sql = "SELECT count(*) FROM runs WHERE status != 'lost' AND started_at >= :bound"
    return await _count(runtime, sql, since)


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))] / 1000


def _report(
    kind: str, size: int, seconds: float, values: list[int], rss: float, code: int, late: float
) -> None:
    p50, p99 = _percentile(values, 0.50), _percentile(values, 0.99)
    worst = values[-1] / 1000 if values else float("nan")
    early = sum(v < -EARLY / timedelta(microseconds=1) for v in values)
    target = P99_TARGET_MS.get(size, 20.0)
    print(
        f"{kind:8} {size:>7} endpoints, {seconds:g} s: {len(values)} runs "
        f"({len(values) / seconds:.0f}/s), worker exit {code}"
        + (f", seeding overran the first slot by {late:.1f} s" if late > 0 else "")
    )
    print(
        f"    lateness p50 {p50:8.2f} ms  p99 {p99:8.2f} ms (target <= {target:g}: "
        f"{verdict(p99 <= target)})  max {worst:8.2f} ms"
    )
    print(f"    starts > 2 ms early: {early} (target 0: {verdict(early == 0)})")
    rss_line = f"    worker peak RSS {rss:.0f} MB"
    if size >= 100_000:
        rss_line += f" (target <= {RSS_TARGET_MB:g}: {verdict(rss <= RSS_TARGET_MB)})"
    print(rss_line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--backends", default="postgres", help="sqlite and/or postgres")
    parser.add_argument("--worker-log", default="", help="append the worker's info log here")
    args = parser.parse_args()
    configure_logging(level="warning")
    kinds = [k for k in args.backends.split(",") if k != "postgres" or pg_available()]
    if not kinds:
        kinds = ["sqlite"]
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(Path(args.worker_log).open("ab")) if args.worker_log else None
        for kind in kinds:
            for size in (int(s) for s in args.sizes.split(",")):
                asyncio.run(measure(kind, size, args.seconds, args.warmup, args.concurrency, log))


if __name__ == "__main__":
    main()
