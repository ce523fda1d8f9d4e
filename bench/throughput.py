"""Throughput: executions per second of one worker with every endpoint due at once.

For each backend (SQLite, PostgreSQL when a server answers on 127.0.0.1:5432) and
each repetition: seed N endpoints all due now, run one in-process worker until all
N runs are recorded, and time it. In the same repetition a bare aiohttp loop sends
N GETs to the same target with the same concurrency; the ratio of the two says what
the scheduler's bookkeeping costs. The target runs in its own process. Since other
work on a shared machine moves rates around, each side's CPU time per request (this
process, threads included; not the database server's) is printed too.

The worker runs with the collector settings ``cadenza worker`` applies
(``bootstrap.tune_gc``); the bare loop, as a plain script would, with the
interpreter's. The bare loop is then run a second time under the worker's settings
and that ratio printed beside the first. The loop starts all N requests at once, so
the settings save it far more CPU per request than they save the worker (about 45%
against 10–15%): that ratio is the stricter one.

    .venv/bin/python bench/throughput.py [--endpoints 10000] [--repeat 3]

Targets: >= 5,000 executions/s; ratio to the bare loop >= 0.6. Medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))

from benchkit import (
    CLOCK,
    bench_settings,
    database,
    make_endpoint,
    make_job,
    median,
    pg_available,
    running,
    seed,
    target_process,
    verdict,
)
from cadenza.adapters.http.loop import install_uvloop
from cadenza.bootstrap import GC_THRESHOLDS, configure_logging, tune_gc
from cadenza.container import build_runtime

TARGET_RATE = 5000.0
TARGET_RATIO = 0.6
DEADLINE = 300.0
"""No repetition runs longer than this many seconds."""
INTERPRETER_GC = gc.get_threshold()


class Measured:
    """Rate and CPU microseconds per request of one side of a repetition."""

    def __init__(self, done: int, seconds: float, cpu_seconds: float) -> None:
        self.rate = done / seconds
        self.cpu_us = cpu_seconds / max(done, 1) * 1e6


async def bare_loop(url: str, count: int, concurrency: int) -> Measured:
    """A plain aiohttp loop: the ceiling for the worker."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate, session.get(url) as response:
                await response.read()

        start, cpu = CLOCK.monotonic(), time.process_time()
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), DEADLINE)
        return Measured(count, CLOCK.monotonic() - start, time.process_time() - cpu)


async def scheduler_rate(db_url: str, target: str, count: int, concurrency: int) -> Measured:
    """One worker draining ``count`` due endpoints."""
    settings = bench_settings(db_url, concurrency=concurrency)
    async with build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        due = now - timedelta(seconds=1)
        endpoints = [
            make_endpoint(job, f"{target}/ok", now, timedelta(hours=1), due) for _ in range(count)
        ]
        await seed(runtime, job, endpoints)
        tune_gc()  # as `cadenza worker` does once started
        async with running(settings, runtime, stats_interval=3600.0) as worker:
            start, cpu = CLOCK.monotonic(), time.process_time()
            deadline = start + DEADLINE
            stats = worker.scheduler.stats
            # Polling a counter every 10 ms costs nothing next to the work measured.
            while stats.completed < count and CLOCK.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            measured = Measured(
                stats.completed, CLOCK.monotonic() - start, time.process_time() - cpu
            )
    return measured


@contextlib.contextmanager
def gc_thresholds(thresholds: tuple[int, int, int]) -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


async def repetition(
    kind: str, target: str, count: int, concurrency: int
) -> tuple[Measured, Measured, Measured]:
    """The worker, the bare loop as a plain script runs it, and the bare loop under
    the worker's collector settings."""
    with database(kind) as db_url:
        rate = await scheduler_rate(db_url, target, count, concurrency)
    url = f"{target}/ok"
    with gc_thresholds(INTERPRETER_GC):
        bare = await bare_loop(url, count, concurrency)
    with gc_thresholds(GC_THRESHOLDS):
        tuned = await bare_loop(url, count, concurrency)
    return rate, bare, tuned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    configure_logging(level="warning")
    install_uvloop()
    kinds = [k for k in args.backends.split(",") if k != "postgres" or pg_available()]
    print(
        f"{args.endpoints} endpoints due at once, concurrency {args.concurrency}, "
        f"{args.repeat} repetitions; target server in its own process"
    )
    with target_process() as target:
        for kind in kinds:
            rates, ratios, tuned_ratios, cpus, bare_cpus = [], [], [], [], []
            for i in range(args.repeat):
                ours, bare, tuned = asyncio.run(
                    repetition(kind, target, args.endpoints, args.concurrency)
                )
                rates.append(ours.rate)
                ratios.append(ours.rate / bare.rate)
                tuned_ratios.append(ours.rate / tuned.rate)
                cpus.append(ours.cpu_us)
                bare_cpus.append(bare.cpu_us)
                print(
                    f"  {kind:8} run {i + 1}: {ours.rate:6.0f} exec/s  "
                    f"bare {bare.rate:6.0f} req/s  ratio {ours.rate / bare.rate:.2f}  "
                    f"CPU/run {ours.cpu_us:4.0f} µs  bare {bare.cpu_us:4.0f} µs  |  "
                    f"bare, worker's GC {tuned.rate:6.0f} req/s  ratio "
                    f"{ours.rate / tuned.rate:.2f}  CPU {tuned.cpu_us:4.0f} µs",
                    flush=True,
                )
            rate, ratio = median(rates), median(ratios)
            print(
                f"{kind:8} median {rate:8.0f} exec/s (target >= {TARGET_RATE:.0f}: "
                f"{verdict(rate >= TARGET_RATE)})  ratio {ratio:.2f} "
                f"(target >= {TARGET_RATIO}: {verdict(ratio >= TARGET_RATIO)})  "
                f"CPU/run {median(cpus):.0f} µs, bare {median(bare_cpus):.0f} µs; "
                f"ratio to the bare loop under the worker's GC {median(tuned_ratios):.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
