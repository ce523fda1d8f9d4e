"""Soak: does ``cadenza serve`` hold its memory under steady load?

Seeds ``--endpoints`` endpoints (default 2,000) on intervals spread over 1–5 s
against a target server on 127.0.0.1 (its own process), runs ``cadenza serve``
(API, scheduler and planner; ``--no-planner`` leaves the planner out) as a
subprocess for ``--seconds``, and samples its resident set size and open file
descriptors every ``--every`` seconds from /proc. Then it stops the process with
SIGTERM and counts the runs recorded.

Growth is the median RSS of the last quarter of the samples over that of the second
quarter (the first quarter is warm-up: caches, pools and the allocator's arenas
filling). A leak grows without levelling off, so it shows in that ratio however
long the soak; a process that has levelled off shows about 1.00.

    .venv/bin/python bench/soak.py [--seconds 240] [--endpoints 2000] [--db sqlite|postgres]
    .venv/bin/python bench/soak.py --short     # 60 s, a quick look
    .venv/bin/python bench/soak.py --trace     # also: where the memory went

``--trace`` runs the process under ``tracemalloc`` (slower), takes a snapshot at
the end of the first quarter and one at the end, and prints the lines whose
allocations grew most in between.

Target: RSS growth between the second and last quarter <= 5 %; open files other
than sockets too, unless all the files opened since are the database's own (a
pooled SQLite connection opened on demand) and the count is flat at the end.
Sockets are mostly the HTTP client's keep-alive pool, which opens connections on
demand up to ``max_concurrency`` and keeps them: a burst steps it up for good,
which is no leak. They pass if they stay within that bound plus the database's
pools (``SOCKET_BOUND``) and are flat at the end (``flat_at_the_end``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from benchkit import (
    CLOCK,
    SQLITE_FILE,
    bench_settings,
    database,
    make_endpoint,
    make_job,
    pg_available,
    seed,
    target_process,
    verdict,
)
from cadenza.adapters.store import postgres as pg
from cadenza.adapters.wakeups import libpq_url
from cadenza.bootstrap import configure_logging
from cadenza.container import build_runtime

TARGET_GROWTH = 0.05
MAX_CONCURRENCY = 512
"""The served process's ``max_concurrency``: the bound of its HTTP client's pool."""
SOCKET_BOUND = MAX_CONCURRENCY + 2 * pg.WRITERS + pg.READERS + pg.READ_BURST + 8
"""Sockets a process may hold for good: the HTTP pool, PostgreSQL's pools (none on
SQLite), and a few more (the API's listener, PostgreSQL's wake-up listener)."""
START_TIMEOUT = 60.0
"""Seconds ``cadenza serve`` gets to start: a hang guard."""
STOP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sample:
    at: float
    rss_mib: float
    files: Counter[str]
    """What the descriptors other than sockets point to, with how many point there."""
    sockets: int

    @property
    def open_files(self) -> int:
        return self.files.total()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def descriptors(pid: int) -> tuple[Counter[str], int]:
    """Open descriptors of ``pid``: what those other than sockets point to, and the
    number of sockets."""
    files: Counter[str] = Counter()
    sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed since the listing
            continue
        if target.startswith("socket:"):
            sockets += 1
        else:
            files[Path(target).name if target.startswith("/") else target] += 1
    return files, sockets


def quarter_medians(values: Sequence[float]) -> tuple[float, float]:
    """Medians of the second and of the last quarter of ``values``."""
    n = len(values)
    second = values[n // 4 : n // 2] or values[:1]
    last = values[3 * n // 4 :] or values[-1:]
    return statistics.median(second), statistics.median(last)


async def seed_endpoints(url: str, target: str, count: int) -> None:
    settings = bench_settings(url, concurrency=512)
    async with build_runtime(settings) as runtime:
        now = CLOCK.now()
        job = make_job(now)
        rng = random.Random(17)
        endpoints = []
        for _ in range(count):
            every = timedelta(seconds=rng.uniform(1.0, 5.0))
            first = now + timedelta(seconds=2 + rng.uniform(0.0, 5.0))
            endpoints.append(make_endpoint(job, f"{target}/ok", now, every, first))
        await seed(runtime, job, endpoints)


_SERVE = """
import signal, sys, tracemalloc, runpy
directory, trace, cache_kib = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
if cache_kib:
    from cadenza.adapters.store import sqlite
    sqlite.CACHE_KIB = sqlite.HOT_CACHE_KIB = cache_kib
if trace:
    tracemalloc.start(1)
taken = []
def snapshot(*_):
    path = f"{directory}/snapshot-{len(taken)}.bin"
    tracemalloc.take_snapshot().dump(path)
    taken.append(path)
signal.signal(signal.SIGUSR1, snapshot)
sys.argv = ["cadenza", "serve"]
runpy.run_module("cadenza.cli", run_name="__main__")
"""
"""The child: ``cadenza serve``, under ``--trace`` dumping a tracemalloc snapshot
into the work directory on SIGUSR1; ``--sqlite-cache-kib`` overrides SQLite's page
cache on every connection (an experiment: how much of the growth is that cache)."""


async def serve(url: str, workdir: Path, args: argparse.Namespace) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "CADENZA_DATABASE_URL": url,
        "CADENZA_SECRET_KEY": bench_settings(url, concurrency=1).secret_key,
        "CADENZA_SSRF_ALLOWLIST": '["127.0.0.1/32"]',
        "CADENZA_PORT": "0",
        "CADENZA_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "CADENZA_MAX_PER_HOST": str(MAX_CONCURRENCY),
        "CADENZA_LOG_LEVEL": "warning",
        "CADENZA_PLANNER_ENABLED": "false" if args.no_planner else "true",
        "CADENZA_ADMIN_EMAIL": "soak@example.com",
        "CADENZA_ADMIN_PASSWORD": "a-long-soak-password",
    }
    with (workdir / "serve.log").open("wb") as log:
        command = ("-c", _SERVE, str(workdir), str(int(args.trace)), str(args.sqlite_cache_kib))
        return await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, cwd=workdir,
            stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip


async def wait_started(workdir: Path, process: asyncio.subprocess.Process) -> None:
    deadline = CLOCK.monotonic() + START_TIMEOUT
    log = workdir / "serve.log"
    while "Cadenza is running" not in log.read_text(errors="replace"):
        if process.returncode is not None or CLOCK.monotonic() > deadline:
            raise RuntimeError(f"cadenza serve did not start:\n{log.read_text()[-2000:]}")
        await asyncio.sleep(0.2)


async def sample(pid: int, seconds: float, every: float, trace: bool) -> list[Sample]:
    samples: list[Sample] = []
    start = CLOCK.monotonic()
    snapped = False
    for _ in range(int(seconds / every) + 1):  # bounded by count as well as time
        now = CLOCK.monotonic() - start
        if now > seconds:
            break
        samples.append(Sample(now, rss_mib(pid), *descriptors(pid)))
        if trace and not snapped and now >= seconds / 4:
            os.kill(pid, signal.SIGUSR1)
            snapped = True
        await asyncio.sleep(every)
    if trace:
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(5)  # the dump takes a moment; the files are checked after
    return samples


def print_growth(workdir: Path, top: int = 20) -> None:
    early, late = workdir / "snapshot-0.bin", workdir / "snapshot-1.bin"
    if not (early.exists() and late.exists()):
        print("  (no tracemalloc snapshots were written)")
        return
    before = tracemalloc.Snapshot.load(str(early))
    after = tracemalloc.Snapshot.load(str(late))
    print(f"tracemalloc: the {top} lines whose allocations grew most after the first quarter")
    for stat in after.compare_to(before, "lineno")[:top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks  {stat.traceback}")


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -9


def count_runs(url: str) -> int:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM runs").fetchone()
        return int(row[0]) if row else 0


async def soak(url: str, target: str, args: argparse.Namespace) -> list[Sample]:
    await seed_endpoints(url, target, args.endpoints)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        process = await serve(url, workdir, args)
        try:
            await wait_started(workdir, process)
            samples = await sample(process.pid, args.seconds, args.every, args.trace)
        finally:
            code = await stop(process) if process.returncode is None else process.returncode
        if args.trace:
            print_growth(workdir)
        if code != 0:
            lines = (workdir / "serve.log").read_text(errors="replace").splitlines()
            print("\n".join([line[:300] for line in lines if "level=" in line][:40]))
            raise RuntimeError(f"cadenza serve exited with {code}")
    return samples


def report(samples: list[Sample], runs: int, seconds: float) -> bool:
    for s in samples[:: max(1, len(samples) // 12)]:
        print(
            f"  t={s.at:6.0f} s  rss {s.rss_mib:7.1f} MiB  "
            f"open files {s.open_files}  sockets {s.sockets}"
        )
    rss_second, rss_last = quarter_medians([s.rss_mib for s in samples])
    files_second, files_last = quarter_medians([float(s.open_files) for s in samples])
    growth = rss_last / rss_second - 1
    print(f"runs recorded: {runs} ({runs / seconds:.0f}/s)")
    print(
        f"RSS median, second quarter {rss_second:.1f} MiB -> last quarter {rss_last:.1f} MiB: "
        f"growth {growth:+.1%} (ratio {rss_last / rss_second:.3f})"
    )
    files_ok = report_files(samples, files_second, files_last)
    sockets_ok = report_sockets([s.sockets for s in samples])
    ok = growth <= TARGET_GROWTH and files_ok and sockets_ok
    print(
        f"target: RSS growth <= {TARGET_GROWTH:.0%}, open files likewise, sockets bounded: "
        f"{verdict(ok)}"
    )
    return ok


def report_files(samples: list[Sample], second: float, last: float) -> bool:
    """Descriptors other than sockets: growth <= 5 %, or only the database's own
    files (a pooled SQLite connection opened on demand) and no climb at the end."""
    early = samples[len(samples) // 2 - 1 if len(samples) > 1 else 0].files
    new = samples[-1].files - early
    print(
        f"open files but sockets, second quarter {second:.0f} -> last {last:.0f}; "
        f"opened since the second quarter: {dict(new) or 'none'}"
    )
    if last <= second * (1 + TARGET_GROWTH):
        return True
    databases = all(name.startswith(SQLITE_FILE) for name in new)
    return databases and flat_at_the_end([float(s.open_files) for s in samples])


def flat_at_the_end(values: Sequence[float]) -> bool:
    """No climb between the two halves of the last quarter (beyond 1 % and two
    descriptors of jitter): a leak keeps climbing, a pool that opened connections
    on demand stays flat."""
    last = values[3 * len(values) // 4 :] or values[-1:]
    first_half = statistics.median(last[: len(last) // 2] or last)
    return statistics.median(last[len(last) // 2 :]) <= first_half * 1.01 + 2


def report_sockets(sockets: list[int]) -> bool:
    """Within ``SOCKET_BOUND``, and not climbing at the end."""
    early, late = quarter_medians(sockets)
    flat = flat_at_the_end(sockets)
    print(
        f"sockets, second quarter {early:.0f} -> last {late:.0f}, peak {max(sockets)} "
        f"(bound {SOCKET_BOUND}: the HTTP pool's max_concurrency {MAX_CONCURRENCY} and the "
        f"database's pools); last quarter {'flat' if flat else 'still climbing'}"
    )
    return max(sockets) <= SOCKET_BOUND and flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--short", action="store_true", help="a 60 s soak")
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--no-planner", action="store_true")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: where memory grew")
    parser.add_argument("--sqlite-cache-kib", type=int, default=0, help="override, 0: as built")
    args = parser.parse_args()
    if args.short:
        args.seconds = 60.0
    configure_logging(level="warning")
    if args.db == "postgres" and not pg_available():
        sys.exit("--db postgres needs the PostgreSQL server at 127.0.0.1:5432")
    print(
        f"cadenza serve on {args.db}, {args.endpoints} endpoints every 1-5 s, "
        f"{args.seconds:g} s, planner {'off' if args.no_planner else 'on'}",
        flush=True,
    )
    with target_process() as target, database(args.db) as url:
        samples = asyncio.run(soak(url, target, args))
        runs = count_runs(url)
    sys.exit(0 if report(samples, runs, args.seconds) else 1)


if __name__ == "__main__":
    main()
