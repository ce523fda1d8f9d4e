"""Dashboard pages against the JSON of the same data: overview and endpoint page.

For SQLite and PostgreSQL (skipped with a message when no server answers on
127.0.0.1:5432): a fresh database is migrated and seeded directly with one tenant
holding ``--jobs`` jobs of ``--endpoints-per-job`` endpoints (10k by default) and
``--runs`` runs (1M by default, spread evenly over the endpoints and over the days
before now, ~8% failures). The app ``cadenza serve`` builds (REST API with the
dashboard mounted) then runs in this process, and an ASGI wrapper times each
request inside the server, from the first byte in to the last byte out.

Two pages are measured, each against the REST reads of the same data made with
the same actions and parameters as the page (read from the page modules'
constants), what a JSON client would fetch to show the same thing, timed the same
way and summed:

* overview (``GET /``): ``list_jobs`` (its first page), ``list_endpoints`` for
  each of those jobs, ``list_planner_sessions``, ``list_proposals`` (pending) and
  ``list_runs`` (the latest);
* endpoint page (``GET /endpoints/{id}``): ``get_endpoint``, ``get_job``,
  ``explain_schedule``, ``list_runs``, ``list_audit_events``,
  ``summarize_endpoint_health`` (24 h), ``list_proposals`` and
  ``list_planner_sessions`` (the edit and planner-settings forms are fetched when
  opened, not with the page).

Page and JSON rounds alternate (``--repeat`` of each, after a warm-up); medians are
printed with the ratio page / JSON. Target: each ratio <= 2. Run:
``.venv/bin/python bench/pages.py [--runs N] [--repeat N] [--backends sqlite,postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2

from api import bulk_insert
from benchkit import CLOCK, database, pg_available, verdict
from cadenza.actions.base import Services
from cadenza.actions.identity import create_user, issue_api_key
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, open_store
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.api import create_app
from cadenza.api.browser import BrowserSessions
from cadenza.bootstrap import tune_gc
from cadenza.config import Settings
from cadenza.domain.identity import KeyKind, Scope
from cadenza.domain.lifecycle import replan
from cadenza.domain.limits import MAX_PAGE_SIZE
from cadenza.domain.model import Endpoint, Job, Method, PlanSource, Request
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.ports import DispatchResult
from cadenza.web import mount_dashboard
from cadenza.web.pages import endpoints, overview

TARGET_RATIO = 2.0
SECRET = b"bench-pages-secret-0123456789abcdef"
BOX_KEY = FernetSecretBox.generate_key()
EMAIL = "pages@example.com"
PASSWORD = "bench password 123"


class _NoWaker:
    def wake(self) -> None:
        return None


class _NoDispatcher:
    """Nothing is dispatched: the benchmark only reads."""

    async def dispatch(self, endpoint: Endpoint, scheduled_for: Any) -> DispatchResult:
        raise RuntimeError("not used in this benchmark")

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    key: str
    endpoints: list[tuple[str, str]]
    """(endpoint id, job id) of every endpoint."""


async def seed_entities(url: str, jobs: int, per_job: int) -> Tenant:
    """The tenant, its admin key, its jobs and endpoints, planned as of now."""
    store = await open_store(url, FernetSecretBox(BOX_KEY))
    keyring = Services(store, CLOCK, _NoWaker(), _NoDispatcher(), SECRET).keyring
    now = CLOCK.now()
    try:
        user = await create_user(store, CLOCK, EMAIL, PASSWORD, is_admin=True)
        scopes = frozenset({Scope.ADMIN})
        _, key = await issue_api_key(
            store, CLOCK, keyring, user.tenant_id, "bench", scopes, KeyKind.USER, None
        )
        made: list[tuple[str, str]] = []
        async with store.transaction() as tx:
            for j in range(jobs):
                job = Job(new_id("job", now), user.tenant_id, f"job-{j:03}", now, now)
                await tx.insert_job(job)
                for e in range(per_job):
                    endpoint = replan(_endpoint(job, e, now), job, now)
                    await tx.insert_endpoint(endpoint)
                    made.append((endpoint.id, job.id))
    finally:
        await store.close()
    return Tenant(user.tenant_id, key, made)


def _endpoint(job: Job, n: int, now: Any) -> Endpoint:
    return Endpoint(
        id=new_id("ep", now),
        job_id=job.id,
        tenant_id=job.tenant_id,
        name=f"ep-{n:03}",
        request=Request(Method.GET, f"https://example.com/{job.name}/{n}"),
        baseline=IntervalSchedule(timedelta(minutes=5)),
        created_at=now - timedelta(days=30),
        updated_at=now,
    )


def run_rows(tenant: Tenant, total: int) -> Iterator[dict[str, Any]]:
    """``total`` runs one second apart ending now, round-robin over the endpoints."""
    start = CLOCK.now() - timedelta(seconds=total)
    for i in range(total):
        at = start + timedelta(seconds=i)
        endpoint_id, job_id = tenant.endpoints[i % len(tenant.endpoints)]
        status = "failure" if i % 13 == 0 else "timeout" if i % 47 == 0 else "success"
        yield {
            "id": new_id("run", at),
            "endpoint_id": endpoint_id,
            "job_id": job_id,
            "tenant_id": tenant.tenant_id,
            "scheduled_for": at,
            "started_at": at,
            "finished_at": at + timedelta(milliseconds=120 + i % 200),
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


class Timed:
    """ASGI wrapper: the server time of the last request, in seconds."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = CLOCK.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            self.last = CLOCK.monotonic() - started


async def server_ms(client: httpx2.AsyncClient, timed: Timed, paths: list[str], **kw: Any) -> float:
    """The summed server time of GET ``paths``, in milliseconds."""
    total = 0.0
    for path in paths:
        answer = await client.get(path, **kw)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {answer.status_code}: {answer.text[:300]}")
        total += timed.last
    return total * 1000


async def sign_in(client: httpx2.AsyncClient) -> None:
    page = await client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    form = {"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}
    answer = await client.post("/sign-in", data=form)
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")


async def overview_reads(client: httpx2.AsyncClient, key: dict[str, str]) -> list[str]:
    jobs_path = f"/api/v1/jobs?limit={overview.JOBS_PER_PAGE}"
    jobs = (await client.get(jobs_path, headers=key)).json()["items"]
    return [
        jobs_path,
        *(f"/api/v1/jobs/{j['id']}/endpoints?limit={MAX_PAGE_SIZE}" for j in jobs),
        f"/api/v1/planner/sessions?limit={overview.PLANNER_SCAN}",
        f"/api/v1/proposals?status=pending&limit={overview.PLANNER_SCAN}",
        f"/api/v1/runs?limit={overview.LATEST_RUNS}",
    ]


def endpoint_reads(endpoint_id: str, job_id: str) -> list[str]:
    ep = f"/api/v1/endpoints/{endpoint_id}"
    rows = endpoints.PLANNER_ROWS
    return [
        ep,
        f"/api/v1/jobs/{job_id}",
        f"{ep}/schedule?preview={endpoints.PREVIEW}",
        f"/api/v1/runs?endpoint_id={endpoint_id}&limit={endpoints.TIMELINE_RUNS}",
        f"/api/v1/audit?target_id={endpoint_id}&limit={endpoints.TIMELINE_CHANGES}",
        f"{ep}/health?window_seconds={endpoints.HEALTH_WINDOW_SECONDS}",
        f"/api/v1/proposals?endpoint_id={endpoint_id}&status=pending&limit={rows}",
        f"/api/v1/planner/sessions?endpoint_id={endpoint_id}&limit={rows}",
    ]


async def compare(
    client: httpx2.AsyncClient,
    timed: Timed,
    label: str,
    page: str,
    reads: list[str],
    key: dict[str, str],
    repeat: int,
) -> None:
    await server_ms(client, timed, [page])
    await server_ms(client, timed, reads, headers=key)
    pages: list[float] = []
    jsons: list[float] = []
    for n in range(repeat):
        if n % 2 == 0:
            pages.append(await server_ms(client, timed, [page]))
            jsons.append(await server_ms(client, timed, reads, headers=key))
        else:
            jsons.append(await server_ms(client, timed, reads, headers=key))
            pages.append(await server_ms(client, timed, [page]))
    page_ms, json_ms = statistics.median(pages), statistics.median(jsons)
    ratio = page_ms / json_ms
    print(
        f"  {label:<14} page {page_ms:8.1f} ms   JSON of the same data {json_ms:8.1f} ms "
        f"({len(reads)} reads)   ratio {ratio:4.2f}x   target <= {TARGET_RATIO:g}x "
        f"{verdict(ratio <= TARGET_RATIO)}",
        flush=True,
    )


async def measure(url: str, tenant: Tenant, repeat: int) -> None:
    store = await open_store(url, FernetSecretBox(BOX_KEY))
    assert isinstance(store, SqlStore)
    services = Services(
        store,
        CLOCK,
        _NoWaker(),
        _NoDispatcher(),
        SECRET,
        planner=SqlPlannerStore(store.engine),
        auth_store=SqlAuthStore(store.engine),
    )
    app = create_app(services, Settings(_env_file=None, rate_limit_per_minute=10**9))
    mount_dashboard(app, services, BrowserSessions(app.state.auth))
    tune_gc()  # as ``cadenza serve`` does once started
    timed = Timed(app)
    transport = httpx2.ASGITransport(app=timed)
    key = {"Authorization": f"Bearer {tenant.key}"}
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
            await sign_in(client)
            await compare(
                client, timed, "overview", "/", await overview_reads(client, key), key, repeat
            )
            endpoint_id, job_id = tenant.endpoints[len(tenant.endpoints) // 2]
            await compare(
                client,
                timed,
                "endpoint page",
                f"/endpoints/{endpoint_id}",
                endpoint_reads(endpoint_id, job_id),
                key,
                repeat,
            )
    finally:
        await store.close()


def run_backend(kind: str, jobs: int, per_job: int, total_runs: int, repeat: int) -> None:
    with database(kind) as url:
        started = CLOCK.monotonic()
        tenant = asyncio.run(seed_entities(url, jobs, per_job))
        bulk_insert(url, run_rows(tenant, total_runs))
        print(
            f"{kind}: seeded {len(tenant.endpoints):,} endpoints and {total_runs:,} runs "
            f"in {CLOCK.monotonic() - started:.1f} s",
            flush=True,
        )
        asyncio.run(measure(url, tenant, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--endpoints-per-job", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="rounds of each (medians)")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    for kind in args.backends.split(","):
        if kind == "postgres" and not pg_available():
            print("postgres: skipped, no server at 127.0.0.1:5432")
            continue
        run_backend(kind, args.jobs, args.endpoints_per_job, args.runs, args.repeat)


if __name__ == "__main__":
    main()
