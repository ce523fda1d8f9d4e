"""REST read latency: ``list_runs`` over 1M runs, through the real server.

For SQLite and PostgreSQL (skipped with a message when no server answers on
127.0.0.1:5432): a fresh database is migrated and seeded with 100 endpoints and
``--runs`` runs (bulk inserts: executemany on SQLite, COPY on PostgreSQL); the app
from ``cadenza.api.create_app`` is served by uvicorn in its own process on a random
127.0.0.1 port; aiohttp clients then page through ``GET /api/v1/runs`` 50 at a time,
filtered by endpoint and by status (every other request follows the previous
page's cursor), with 1 and 10 concurrent clients, ``--repeat`` rounds each (the
medians are printed, with each round's p95 in brackets).

Target: p95 <= 10 ms with 10 concurrent clients. Each line also gives the server
process's CPU time per request (all its threads, from /proc): with 10 requests in
flight on one event loop each waits for the others' CPU, so p95 at 10 clients needs
well under 1 ms of it per request. Every loop is bounded in count and time. Run:
``.venv/bin/python bench/api.py [--runs N] [--repeat N] [--backends sqlite,postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import socket
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import sqlalchemy as sa

from benchkit import CLOCK, database, pg_available, verdict
from cadenza.actions.base import Services
from cadenza.actions.identity import create_user, issue_api_key
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import open_store
from cadenza.adapters.store.migrate import sync_url
from cadenza.adapters.store.tables import runs, to_micros
from cadenza.domain.identity import KeyKind, Scope
from cadenza.domain.model import Endpoint, Job, Method, PlanSource, Request
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.keyring import Keyring
from cadenza.ports import DispatchResult

TARGET_P95_MS = 10.0
ENDPOINTS = 100
PAGE = 50
SECRET = b"bench-server-secret-0123456789abcdef"
BOX_KEY = FernetSecretBox.generate_key()
START = datetime(2026, 1, 1, tzinfo=UTC)
SCENARIO_DEADLINE_S = 60.0


class _NoWaker:
    def wake(self) -> None:
        return None


class _NoDispatcher:
    """The benchmark never sends requests to targets."""

    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        raise RuntimeError("not used in this benchmark")

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Seeded:
    url: str
    key: str
    endpoint_ids: list[str]


async def seed_entities(url: str) -> tuple[str, str, Job, list[str]]:
    """A user (tenant), its admin key, one job and the endpoints, through the store."""
    store = await open_store(url, FernetSecretBox(BOX_KEY))
    try:
        user = await create_user(
            store, CLOCK, "bench@example.com", "bench password 123", is_admin=True
        )
        _, key = await issue_api_key(
            store,
            CLOCK,
            Keyring.of(SECRET),
            user.tenant_id,
            "bench",
            frozenset({Scope.ADMIN}),
            KeyKind.USER,
            None,
        )
        job = Job(new_id("job", START), user.tenant_id, "bench", START, START)
        endpoints = [
            Endpoint(
                id=new_id("ep", START),
                job_id=job.id,
                tenant_id=user.tenant_id,
                name=f"ep-{n}",
                request=Request(Method.GET, "https://example.com/"),
                baseline=IntervalSchedule(timedelta(minutes=1)),
                created_at=START,
                updated_at=START,
            )
            for n in range(ENDPOINTS)
        ]
        async with store.transaction() as tx:
            await tx.insert_job(job)
            for endpoint in endpoints:
                await tx.insert_endpoint(endpoint)
    finally:
        await store.close()
    return user.tenant_id, key, job, [e.id for e in endpoints]


def run_rows(
    tenant: str, job_id: str, endpoint_ids: list[str], total: int
) -> Iterator[dict[str, Any]]:
    """``total`` runs one second apart, round-robin over the endpoints; ~8% failures."""
    for i in range(total):
        at = START + timedelta(seconds=i)
        status = "failure" if i % 13 == 0 else "timeout" if i % 47 == 0 else "success"
        yield {
            "id": new_id("run", at),
            "endpoint_id": endpoint_ids[i % len(endpoint_ids)],
            "job_id": job_id,
            "tenant_id": tenant,
            "scheduled_for": at,
            "started_at": at,
            "finished_at": at + timedelta(milliseconds=120),
            "status": status,
            "source": PlanSource.BASELINE_INTERVAL.value,
            "attempt": 1,
            "missed_slots": 0,
            "http_status": 200 if status == "success" else 503,
            "error": "" if status == "success" else "HTTP 503",
            "response_body": None,
            "response_meta": None,
            "worker_id": "bench",
        }


def bulk_insert(url: str, rows: Iterator[dict[str, Any]], chunk: int = 50_000) -> None:
    """COPY on PostgreSQL; on SQLite, executemany of plain tuples in big transactions,
    timestamps encoded as the store encodes them (microseconds since the epoch)."""
    if sa.make_url(url).get_backend_name() == "postgresql":
        _copy_postgres(url, rows)
        return
    columns = [c.name for c in runs.columns]
    stamps = {"scheduled_for", "started_at", "finished_at"}
    sql = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    engine = sa.create_engine(sync_url(url))
    try:
        batch: list[tuple[Any, ...]] = []
        for row in rows:
            batch.append(tuple(to_micros(row[c]) if c in stamps else row[c] for c in columns))
            if len(batch) >= chunk:
                _execute_many(engine, sql, batch)
                batch = []
        if batch:
            _execute_many(engine, sql, batch)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def _execute_many(engine: sa.Engine, sql: str, batch: list[tuple[Any, ...]]) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(sql, batch)


def _copy_postgres(url: str, rows: Iterator[dict[str, Any]]) -> None:
    parsed = sa.make_url(url)
    columns = [c.name for c in runs.columns]
    conninfo = f"postgresql://{parsed.username}@{parsed.host}:{parsed.port}/{parsed.database}"
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY runs ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
        conn.execute("ANALYZE runs")


def _serve(url: str, conn: Connection) -> None:
    """Child process: the real app on uvicorn, on a random 127.0.0.1 port."""
    import uvicorn

    from cadenza.adapters.http.loop import install_uvloop
    from cadenza.api import create_app
    from cadenza.bootstrap import tune_gc
    from cadenza.config import Settings

    install_uvloop()  # as ``cadenza serve`` does: uvicorn's own loop setup is in run(), not serve()

    async def main() -> None:
        store = await open_store(url, FernetSecretBox(BOX_KEY))
        services = Services(store, CLOCK, _NoWaker(), _NoDispatcher(), SECRET)
        app = create_app(services, Settings(rate_limit_per_minute=10**9))
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only
        # when the listener says TCP; with proto 0 every keep-alive response stalls
        # ~40 ms on Nagle plus the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        conn.send(sock.getsockname()[1])
        tune_gc()  # as ``cadenza serve`` does once started
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        await uvicorn.Server(config).serve(sockets=[sock])

    asyncio.run(main())


async def _wait_ready(base: str, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{base}/api/v1/me", headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the API server did not become ready")


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    params_for: Any,
    count: int,
    deadline: float,
    latencies: list[float],
) -> None:
    cursor: str | None = None
    for n in range(count):
        if CLOCK.monotonic() > deadline:
            return
        params = params_for()
        if cursor is not None and n % 2 == 1:
            params["cursor"] = cursor
        started = CLOCK.monotonic()
        async with session.get(url, params=params) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {body}")
        latencies.append((CLOCK.monotonic() - started) * 1000)
        cursor = body.get("next_cursor")


async def measure(
    url: str, headers: dict[str, str], params_for: Any, clients: int, total: int
) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        warm: list[float] = []
        await _client(session, url, params_for, 30, CLOCK.monotonic() + 10, warm)
        deadline = CLOCK.monotonic() + SCENARIO_DEADLINE_S
        per_client = max(1, total // clients)
        await asyncio.gather(
            *(
                _client(session, url, params_for, per_client, deadline, latencies)
                for _ in range(clients)
            )
        )
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` and all its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Round:
    """One measurement of one scenario: latency quantiles and server CPU per request."""

    p50: float
    p95: float
    cpu_ms: float


async def measure_round(
    url: str, headers: dict[str, str], params_for: Any, clients: int, total: int, server_pid: int
) -> Round:
    cpu_before = cpu_seconds(server_pid)
    latencies = await measure(url, headers, params_for, clients, total)
    # The warm-up requests in ``measure`` are counted too (30 of them).
    cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / (len(latencies) + 30)
    return Round(statistics.median(latencies), p(latencies, 0.95), cpu_ms)


async def bench_backend(
    seeded: Seeded, base: str, requests: int, repeat: int, server_pid: int
) -> None:
    headers = {"Authorization": f"Bearer {seeded.key}"}
    await _wait_ready(base, headers)
    rng = random.Random(7)
    scenarios = {
        # The floor: authentication and the HTTP stack, no list query.
        "whoami (floor)": ("/api/v1/me", dict),
        "list_runs by endpoint": (
            "/api/v1/runs",
            lambda: {"endpoint_id": rng.choice(seeded.endpoint_ids), "limit": PAGE},
        ),
        "list_runs by status": ("/api/v1/runs", lambda: {"status": "failure", "limit": PAGE}),
    }
    for label, (path, params_for) in scenarios.items():
        for clients in (1, 10):
            total = requests if clients == 1 else requests * 4
            rounds = [
                await measure_round(base + path, headers, params_for, clients, total, server_pid)
                for _ in range(repeat)
            ]
            p50 = statistics.median(r.p50 for r in rounds)
            p95 = statistics.median(r.p95 for r in rounds)
            cpu_ms = statistics.median(r.cpu_ms for r in rounds)
            judged = clients == 10 and path == "/api/v1/runs"
            target = f"p95 <= {TARGET_P95_MS:g} ms" if judged else "(reference)"
            each = ", ".join(f"{r.p95:.1f}" for r in rounds)
            print(
                f"  {label:<22} {clients:>2} client(s) n={total:>5}x{repeat}  "
                f"p50 {p50:7.2f} ms  p95 {p95:7.2f} ms ({each})  server CPU {cpu_ms:5.2f} ms/req"
                f"   target {target} {verdict(p95 <= TARGET_P95_MS) if judged else ''}",
                flush=True,
            )


def run_backend(kind: str, total_runs: int, requests: int, repeat: int) -> None:
    with database(kind) as url:
        started = CLOCK.monotonic()
        tenant, key, job, endpoint_ids = asyncio.run(seed_entities(url))
        bulk_insert(url, run_rows(tenant, job.id, endpoint_ids, total_runs))
        print(
            f"{kind}: seeded {total_runs:,} runs in {CLOCK.monotonic() - started:.1f} s", flush=True
        )
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        server = ctx.Process(target=_serve, args=(url, child), daemon=True)
        server.start()
        try:
            if not parent.poll(60):
                raise RuntimeError("the API server did not start")
            base = f"http://127.0.0.1:{parent.recv()}"
            seeded = Seeded(url, key, endpoint_ids)
            asyncio.run(bench_backend(seeded, base, requests, repeat, server.pid or 0))
        finally:
            server.terminate()
            server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=500, help="per scenario, 1 client")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per scenario (medians)")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    for kind in args.backends.split(","):
        if kind == "postgres" and not pg_available():
            print("postgres: skipped, no server at 127.0.0.1:5432")
            continue
        run_backend(kind, args.runs, args.requests, args.repeat)


if __name__ == "__main__":
    main()
