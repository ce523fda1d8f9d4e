"""Peers: Cadenza beside a bare aiohttp loop and APScheduler 4, on the same target.

Contenders, each in a fresh process of its own, on uvloop, against one target server
in another process (127.0.0.1 only), all with ``--concurrency`` requests at most:

* ``bare``: one task per endpoint sleeping until its slot, then a GET through one
  shared aiohttp session: the floor any scheduler builds on;
* ``apscheduler``: APScheduler 4's ``AsyncScheduler`` with its memory data store, an
  interval schedule per endpoint (``pip install -e '.[bench]'`` installs it);
* ``cadenza-sqlite`` and ``cadenza-postgres``: one worker as ``cadenza worker``
  runs it (its collector settings included) on a fresh, migrated database.

Workloads, with first slots spread evenly over each interval:

* ``throughput``: 10,000 endpoints every second (a demand of 10,000 runs/s);
* ``precision``: 1,000 endpoints on intervals of 1–10 s (whole seconds, seeded).

Each contender runs a workload for ``--warmup`` + ``--seconds`` (+ 1 s for stragglers);
only the last ``--seconds`` count. Printed per contender, over the runs started in
that window: executions/s, worker CPU µs per run (the contender's whole process,
threads included; never the database server's), lateness p50/p99 (start − the slot
the run is recorded for) and the slots missed: those due in the window less the
runs started in it (a run late past its next slot stands for both: each contender
coalesces). Ratios are to the bare loop and to APScheduler of the same
round; rounds interleave the contenders (the order rotates) and medians are printed.

    .venv/bin/python bench/peers.py [--seconds 20] [--warmup 5] [--rounds 3]
        [--workloads throughput,precision] [--contenders bare,apscheduler,...]

Goals (printed beside the figures): CPU per run ≤ 2 × the bare loop's; executions/s
≥ 2 × APScheduler's on the throughput workload; precision p99 ≤ APScheduler's.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from cadenza.adapters.clock import SystemClock

sys.path.insert(0, str(Path(__file__).parent))

# Children import only what their contender needs: a bare loop that carried the whole of
# Cadenza in memory would pay for it in every full garbage collection.
CLOCK = SystemClock()
CONTENDERS = ("bare", "apscheduler", "cadenza-sqlite", "cadenza-postgres")
WORKLOADS = ("throughput", "precision")
LEAD = 3.0
"""Seconds from a child's start to its first slots, for its set-up."""
TAIL = 1.0
"""Seconds a contender keeps running after the window, for runs of its last slots."""
CPU_GOAL = 2.0
RATE_GOAL = 2.0

Execution = tuple[int, float, float]
"""Endpoint index, slot and start, in POSIX seconds."""


@dataclass(frozen=True)
class Plan:
    intervals: list[float]
    phases: list[float]

    def first(self, t0: float, index: int) -> float:
        return t0 + self.phases[index]


def plan_for(workload: str) -> Plan:
    if workload == "throughput":
        count = 10_000
        return Plan([1.0] * count, [i / count for i in range(count)])
    draw = random.Random(1000)
    intervals = [float(draw.randint(1, 10)) for _ in range(1000)]
    return Plan(intervals, [round(draw.uniform(0, every), 3) for every in intervals])


@dataclass(frozen=True)
class Figures:
    rate: float
    cpu_us: float
    p50_ms: float
    p99_ms: float
    due: int
    missed: int


@dataclass(frozen=True)
class Window:
    begin: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.begin


def score(plan: Plan, t0: float, window: Window, ran: list[Execution], cpu: float) -> Figures:
    """The figures of the runs started in ``window``. A run late past its next slot
    stands for both (each contender coalesces), so slots missed are those that came
    due in the window less the runs started in it."""
    late = sorted(
        (start - slot) * 1000 for _, slot, start in ran if window.begin <= start < window.end
    )
    due = 0
    for i, every in enumerate(plan.intervals):
        first = plan.first(t0, i)
        skipped = max(0, -int((first - window.begin) // every))
        due += max(0, math.ceil((window.end - first) / every) - skipped)
    return Figures(
        rate=len(late) / window.seconds,
        cpu_us=cpu / max(len(late), 1) * 1e6,
        p50_ms=_quantile(late, 0.50),
        p99_ms=_quantile(late, 0.99),
        due=due,
        missed=max(0, due - len(late)),
    )


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - CLOCK.now().timestamp()))


async def cpu_in(window: Window) -> float:
    """CPU seconds this process spends between the window's two instants."""
    await _until(window.begin)
    before = time.process_time()
    await _until(window.end)
    return time.process_time() - before


# -- the contenders (each runs in a child process) -------------------------------


async def run_bare(plan: Plan, url: str, t0: float, stop: float, limit: int) -> list[Execution]:
    ran: list[Execution] = []
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(limit)

        async def endpoint(i: int) -> None:
            every, slot = plan.intervals[i], plan.first(t0, i)
            while slot < stop:
                await _until(slot)
                async with gate:
                    start = CLOCK.now().timestamp()
                    async with session.get(url) as response:
                        await response.read()
                ran.append((i, slot, start))
                slot += every
                now = CLOCK.now().timestamp()
                while slot + every <= now:  # coalesce slots already past, as the others do
                    slot += every

        await asyncio.gather(*(endpoint(i) for i in range(len(plan.intervals))))
    return ran


_SESSION: list[aiohttp.ClientSession] = []
_APS_RAN: list[Execution] = []


async def aps_job(i: int, url: str) -> None:
    """APScheduler's job: module level, so its task can be referenced by name."""
    from apscheduler import current_job

    start = CLOCK.now().timestamp()
    async with _SESSION[0].get(url) as response:
        await response.read()
    _APS_RAN.append((i, current_job.get().scheduled_fire_time.timestamp(), start))


async def run_apscheduler(
    plan: Plan, url: str, t0: float, stop: float, limit: int
) -> list[Execution]:
    from apscheduler import AsyncScheduler, CoalescePolicy, TaskDefaults
    from apscheduler.triggers.interval import IntervalTrigger

    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        _SESSION.append(session)
        # A task's jobs run one at a time by default; every endpoint shares the task.
        defaults = TaskDefaults(max_running_jobs=None)
        async with AsyncScheduler(max_concurrent_jobs=limit, task_defaults=defaults) as aps:
            for i, every in enumerate(plan.intervals):
                first = datetime.fromtimestamp(plan.first(t0, i), CLOCK.now().tzinfo)
                await aps.add_schedule(
                    aps_job,
                    IntervalTrigger(seconds=every, start_time=first),
                    id=f"e{i}",
                    kwargs={"i": i, "url": url},
                    coalesce=CoalescePolicy.latest,
                    misfire_grace_time=None,
                )
            await aps.start_in_background()
            await _until(stop)
    return list(_APS_RAN)


async def run_cadenza(
    plan: Plan, url: str, t0: float, stop: float, limit: int, db_url: str
) -> list[Execution]:
    import sqlalchemy as sa

    from benchkit import bench_settings, make_endpoint, make_job, running, seed
    from cadenza.adapters.store import SqlStore
    from cadenza.adapters.store.tables import runs
    from cadenza.container import build_runtime, configure_logging, tune_gc

    configure_logging(level="warning")
    settings = bench_settings(db_url, concurrency=limit)
    async with build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        endpoints = [
            make_endpoint(job, url, now, timedelta(seconds=every), _at(plan.first(t0, i), now))
            for i, every in enumerate(plan.intervals)
        ]
        await seed(runtime, job, endpoints)
        tune_gc()  # as `cadenza worker` does once started
        async with running(settings, runtime, stats_interval=3600.0):
            await _until(stop)
        index = {e.id: i for i, e in enumerate(endpoints)}
        query = sa.select(runs.c.endpoint_id, runs.c.scheduled_for, runs.c.started_at)
        assert isinstance(runtime.store, SqlStore)
        async with runtime.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    return [(index[e], slot.timestamp(), start.timestamp()) for e, slot, start in rows]


def _at(posix: float, like: datetime) -> datetime:
    return datetime.fromtimestamp(posix, like.tzinfo)


Runner = Callable[[Plan, str, float, float, int], Awaitable[list[Execution]]]


async def child(contender: str, workload: str, args: argparse.Namespace) -> Figures:
    plan = plan_for(workload)
    t0 = CLOCK.now().timestamp() + LEAD
    window = Window(t0 + args.warmup, t0 + args.warmup + args.seconds)
    runner: Runner = {"bare": run_bare, "apscheduler": run_apscheduler}.get(contender) or (
        lambda *a: run_cadenza(*a, db_url=args.database)
    )
    meter = asyncio.create_task(cpu_in(window))
    ran = await runner(plan, f"{args.target}/ok", t0, window.end + TAIL, args.concurrency)
    return score(plan, t0, window, ran, await meter)


def child_main(args: argparse.Namespace) -> None:
    import logging

    import uvloop

    logging.basicConfig(level=logging.WARNING)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        figures = runner.run(child(args.child, args.workload, args))
    print(json.dumps(asdict(figures)))


# -- the parent: rounds, ratios, goals ------------------------------------------


@contextmanager
def database_for(contender: str) -> Iterator[str]:
    from benchkit import database

    if not contender.startswith("cadenza-"):
        yield ""
        return
    with database(contender.removeprefix("cadenza-")) as url:
        yield url


def run_one(contender: str, workload: str, target: str, args: argparse.Namespace) -> Figures:
    with database_for(contender) as db_url:
        command = [
            sys.executable, __file__, "--child", contender, "--workload", workload,
            "--target", target, "--database", db_url, "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--concurrency", str(args.concurrency),
        ]  # fmt: skip
        budget = LEAD + args.warmup + args.seconds + TAIL + 300  # a hang guard
        done = subprocess.run(command, capture_output=True, text=True, timeout=budget)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} on {workload} failed:\n{done.stderr[-3000:]}")
    return Figures(**json.loads(done.stdout.strip().splitlines()[-1]))


def line(name: str, f: Figures, bare: Figures | None, aps: Figures | None) -> str:
    ratios = ""
    for label, ref in (("bare", bare), ("APS", aps)):
        if ref is not None and ref is not f:
            ratios += f"  ×{label}: rate {f.rate / ref.rate:4.2f} CPU {f.cpu_us / ref.cpu_us:4.2f}"
    return (
        f"  {name:17}{f.rate:8.0f} exec/s {f.cpu_us:6.0f} µs/run  lateness p50 "
        f"{f.p50_ms:8.1f} p99 {f.p99_ms:8.1f} ms  missed {f.missed:>7.0f} of {f.due:<7.0f}{ratios}"
    )


def summary(workload: str, rounds: list[dict[str, Figures]]) -> None:
    from benchkit import median, verdict

    print(f"\n{workload}: medians of {len(rounds)} round(s)")
    names = [n for n in CONTENDERS if all(n in r for r in rounds)]
    med = {n: _median_figures([r[n] for r in rounds]) for n in names}
    for name in names:
        print(line(name, med[name], med.get("bare"), med.get("apscheduler")))
    for name in (n for n in names if n.startswith("cadenza")):
        print(f"  goals, {name}:")
        if "bare" in names:
            cpu = median([r[name].cpu_us / r["bare"].cpu_us for r in rounds])
            print(f"    CPU per run {cpu:.2f} × the bare loop's (goal ≤ {CPU_GOAL:g}): "
                  f"{verdict(cpu <= CPU_GOAL)}")  # fmt: skip
        if "apscheduler" in names and workload == "throughput":
            rate = median([r[name].rate / r["apscheduler"].rate for r in rounds])
            print(f"    executions/s {rate:.2f} × APScheduler's (goal ≥ {RATE_GOAL:g}): "
                  f"{verdict(rate >= RATE_GOAL)}")  # fmt: skip
        if "apscheduler" in names and workload == "precision":
            mine, theirs = med[name].p99_ms, med["apscheduler"].p99_ms
            print(f"    lateness p99 {mine:.1f} ms vs APScheduler's {theirs:.1f} ms "
                  f"(goal ≤): {verdict(mine <= theirs)}")  # fmt: skip


def _median_figures(values: list[Figures]) -> Figures:
    def mid(key: str) -> Any:
        return statistics.median(getattr(v, key) for v in values)

    return Figures(
        mid("rate"), mid("cpu_us"), mid("p50_ms"), mid("p99_ms"), mid("due"), mid("missed")
    )


def parent_main(args: argparse.Namespace) -> None:
    from benchkit import pg_available, target_process

    contenders = [c for c in args.contenders.split(",") if c]
    if "apscheduler" in contenders and importlib.util.find_spec("apscheduler") is None:
        print("APScheduler is not installed (pip install -e '.[bench]'): left out")
        contenders.remove("apscheduler")
    if "cadenza-postgres" in contenders and not pg_available():
        print("no PostgreSQL server on 127.0.0.1:5432: cadenza-postgres left out")
        contenders.remove("cadenza-postgres")
    print(
        f"window {args.seconds:g} s after {args.warmup:g} s of warm-up, {args.rounds} round(s), "
        f"concurrency {args.concurrency}; target server in its own process"
    )
    results: dict[str, list[dict[str, Figures]]] = {w: [] for w in args.workloads.split(",")}
    with target_process() as target:
        for r in range(args.rounds):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for workload, rounds in results.items():
                print(f"round {r + 1}, {workload}", flush=True)
                got = {c: run_one(c, workload, target, args) for c in order}
                for name in order:
                    print(line(name, got[name], got.get("bare"), got.get("apscheduler")))
                rounds.append(got)
    for workload, rounds in results.items():
        summary(workload, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
