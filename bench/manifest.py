"""Bulk set-up: one manifest of 10,000 endpoints through ``apply_manifest``, against the
store writing the same rows itself.

For SQLite and PostgreSQL (skipped with a message when no server answers on
127.0.0.1:5432), each round, interleaved:

* **apply**: a fresh database, the real app (``cadenza.api.create_app``, default rate
  limit of 600 requests a minute) served by uvicorn in its own process on a random
  127.0.0.1 port, and one ``POST /api/v1/manifest`` of ``--endpoints`` endpoints in
  ``--jobs`` jobs (a secret header on each, a cron baseline on every tenth): timed from
  sending the request to the answer. With ``--cli`` the same manifest is also applied
  as a YAML file by the ``cadenza apply -f`` executable, timed from start to exit.
* **store**: a fresh database and, built beforehand, the same jobs, endpoints (planned)
  and audit events; timed: one transaction of ``insert_job``, ``insert_endpoints`` and
  ``insert_audits`` (batched) through the store's own ``Tx``: the rows an apply
  writes, written the fastest way the store offers.

Prints each round, then the medians and the ratio apply / store. Target: <= 3x.
Every wait is bounded. Run: ``.venv/bin/python bench/manifest.py [--endpoints N]
[--jobs N] [--repeat N] [--backends sqlite,postgres] [--cli]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx2
import yaml

from benchkit import CLOCK, database, median, pg_available, verdict
from cadenza.actions.base import Context, Services, audit_event
from cadenza.actions.identity import issue_api_key
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import open_store
from cadenza.bootstrap import tune_gc
from cadenza.domain import lifecycle
from cadenza.domain.identity import KeyKind, Scope, User
from cadenza.domain.model import Actor, ActorKind, Endpoint, Header, Job, Method, Request
from cadenza.domain.schedule import CronSchedule, IntervalSchedule
from cadenza.ids import new_id
from cadenza.keyring import Keyring

TARGET_RATIO = 3.0
SECRET = b"bench-server-secret-0123456789abcdef"
BOX_KEY = FernetSecretBox.generate_key()
READY_POLLS = 600
APPLY_TIMEOUT_S = 900.0
CADENZA = shutil.which("cadenza", path=str(Path(sys.executable).parent)) or "cadenza"


class _NoWaker:
    def wake(self) -> None:
        return None


class _NoDispatcher:
    async def dispatch(self, endpoint: Endpoint, scheduled_for: Any) -> Any:
        raise RuntimeError("not used in this benchmark")

    async def close(self) -> None:
        return None


def manifest(jobs: int, endpoints: int) -> dict[str, Any]:
    """``endpoints`` endpoints spread over ``jobs`` jobs, as a person would write them."""
    per_job = endpoints // jobs
    document: dict[str, Any] = {"version": 1, "jobs": []}
    for j in range(jobs):
        items = []
        for e in range(per_job):
            n = j * per_job + e
            baseline = (
                {"cron": f"{n % 60} * * * *", "timezone": "Europe/Berlin"}
                if n % 10 == 0
                else {"interval_seconds": 60 + n % 600}
            )
            items.append(
                {
                    "name": f"check-{n:05d}",
                    "tier": "health",
                    "request": {
                        "url": f"https://shop-{j}.example.com/health/{n}",
                        "headers": [{"name": "Authorization", "value": f"t{n}", "secret": True}],
                        "timeout_seconds": 10,
                    },
                    "baseline": baseline,
                    "min_interval_seconds": 30,
                    "max_interval_seconds": 3600,
                }
            )
        document["jobs"].append({"name": f"fleet-{j:02d}", "tags": ["bench"], "endpoints": items})
    return document


def rows_of(document: dict[str, Any], tenant: str) -> tuple[list[Job], list[Endpoint]]:
    """The jobs and planned endpoints an apply of ``document`` writes."""
    now = CLOCK.now()
    jobs, endpoints = [], []
    for spec in document["jobs"]:
        job = Job(new_id("job", now), tenant, spec["name"], now, now, tags=tuple(spec["tags"]))
        jobs.append(job)
        for item in spec["endpoints"]:
            request = item["request"]
            base = item["baseline"]
            baseline = (
                CronSchedule(base["cron"], base["timezone"])
                if "cron" in base
                else IntervalSchedule(timedelta(seconds=base["interval_seconds"]))
            )
            endpoint = Endpoint(
                id=new_id("ep", now),
                job_id=job.id,
                tenant_id=tenant,
                name=item["name"],
                request=Request(
                    Method.GET,
                    request["url"],
                    headers=tuple(Header(h["name"], h["value"], True) for h in request["headers"]),
                    timeout=timedelta(seconds=request["timeout_seconds"]),
                ),
                baseline=baseline,
                created_at=now,
                updated_at=now,
                tier=item["tier"],
            )
            endpoints.append(lifecycle.replan(endpoint, job, now))
    return jobs, endpoints


async def tenant_key(url: str) -> tuple[str, str]:
    store = await open_store(url, FernetSecretBox(BOX_KEY))
    try:
        now = CLOCK.now()
        user = User(new_id("usr", now), "bench@example.com", "x", now)
        async with store.transaction() as tx:
            await tx.insert_user(user)
        scopes = frozenset({Scope.ADMIN})
        keyring = Keyring.of(SECRET, ())
        _, key = await issue_api_key(
            store, CLOCK, keyring, user.tenant_id, "bench", scopes, KeyKind.USER, None
        )
    finally:
        await store.close()
    return user.tenant_id, key


async def store_writes(url: str, document: dict[str, Any]) -> float:
    """Seconds for the store to write an apply's rows in one transaction itself, with
    its batched inserts (the rows built beforehand)."""
    tenant, _ = await tenant_key(url)
    store = await open_store(url, FernetSecretBox(BOX_KEY))
    services = Services(store, CLOCK, _NoWaker(), _NoDispatcher(), SECRET)
    actor = Actor(ActorKind.API_KEY, "key_bench", "bench")
    ctx = Context.for_caller(services, tenant, actor, frozenset({Scope.ADMIN}))
    jobs, endpoints = rows_of(document, tenant)
    now = CLOCK.now()
    events = [
        audit_event(ctx, now, "apply_manifest", ("job", j.id), "", {"op": "create"}) for j in jobs
    ] + [
        audit_event(ctx, now, "apply_manifest", ("endpoint", e.id), "", {"op": "create"})
        for e in endpoints
    ]
    try:
        started = CLOCK.monotonic()
        async with store.transaction() as tx:
            for job in jobs:
                await tx.insert_job(job)
            await tx.insert_endpoints(endpoints)
            await tx.insert_audits(events)
        return CLOCK.monotonic() - started
    finally:
        await store.close()


def _serve(url: str, conn: Connection) -> None:
    """Child process: the real app on uvicorn (default rate limit), a random port."""
    import uvicorn

    from cadenza.api import create_app
    from cadenza.config import Settings

    async def main() -> None:
        store = await open_store(url, FernetSecretBox(BOX_KEY))
        services = Services(store, CLOCK, _NoWaker(), _NoDispatcher(), SECRET)
        app = create_app(services, Settings())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        conn.send(sock.getsockname()[1])
        tune_gc()  # as ``cadenza serve`` does once started
        config = uvicorn.Config(app, log_level="warning", access_log=False)
        await uvicorn.Server(config).serve(sockets=[sock])

    asyncio.run(main())


def _ready(base: str, key: str) -> None:
    for _ in range(READY_POLLS):
        try:
            if httpx2.get(
                f"{base}/api/v1/me", headers={"Authorization": f"Bearer {key}"}
            ).is_success:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the API server did not become ready")


def apply_round(
    url: str, document: dict[str, Any], cli_file: Path | None
) -> tuple[float, float | None]:
    """Seconds of the REST apply (and of the CLI apply of a second fresh database)."""
    _, key = asyncio.run(tenant_key(url))
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(url, child), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the API server did not start")
        base = f"http://127.0.0.1:{parent.recv()}"
        _ready(base, key)
        body = json.dumps({"manifest": document}).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        started = CLOCK.monotonic()
        answer = httpx2.post(
            f"{base}/api/v1/manifest", content=body, headers=headers, timeout=APPLY_TIMEOUT_S
        )
        elapsed = CLOCK.monotonic() - started
        if answer.status_code != 200 or answer.json()["created"] < len(document["jobs"]):
            raise RuntimeError(f"apply failed: {answer.status_code} {answer.text[:300]}")
        cli = None if cli_file is None else _cli_apply(base, key, cli_file)
        return elapsed, cli
    finally:
        process.terminate()
        process.join(10)


def _cli_apply(base: str, key: str, path: Path) -> float:
    """Re-applied over the same tenant, the CLI's run is mostly parsing and diffing."""
    env = {**os.environ, "CADENZA_URL": base, "CADENZA_API_KEY": key}
    started = CLOCK.monotonic()
    done = subprocess.run(
        [CADENZA, "apply", "-f", str(path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=APPLY_TIMEOUT_S,
        check=False,
    )
    elapsed = CLOCK.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"cadenza apply failed: {done.stderr[-300:]}")
    return elapsed


def run_backend(kind: str, document: dict[str, Any], repeat: int, cli: bool) -> None:
    count = sum(len(j["endpoints"]) for j in document["jobs"])
    applies: list[float] = []
    stores: list[float] = []
    clis: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        cli_file = None
        if cli:
            cli_file = Path(directory) / "bench.yaml"
            cli_file.write_text(yaml.safe_dump(document, sort_keys=False))
        for round_ in range(repeat):
            # Alternate which goes first, so neither always gets the warmer machine.
            order = ("store", "apply") if round_ % 2 == 0 else ("apply", "store")
            for what in order:
                with database(kind) as url:
                    if what == "store":
                        stores.append(asyncio.run(store_writes(url, document)))
                    else:
                        rest, by_cli = apply_round(url, document, cli_file)
                        applies.append(rest)
                        if by_cli is not None:
                            clis.append(by_cli)
            print(
                f"  {kind} round {round_ + 1}: apply {applies[-1]:.2f} s, "
                f"store {stores[-1]:.2f} s, ratio {applies[-1] / stores[-1]:.2f}"
                + (f", cadenza apply -f (again) {clis[-1]:.2f} s" if clis else "")
            )
    ratio = median(applies) / median(stores)
    print(
        f"{kind}: {count} endpoints in one request: apply {median(applies):.2f} s "
        f"({count / median(applies):.0f} endpoints/s), store alone {median(stores):.2f} s; "
        f"ratio {ratio:.2f} (target <= {TARGET_RATIO:g}) {verdict(ratio <= TARGET_RATIO)}"
    )
    if clis:
        print(f"{kind}: cadenza apply -f of the YAML file again (no change): {median(clis):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--cli", action="store_true", help="Also time cadenza apply -f.")
    args = parser.parse_args()
    tune_gc()  # the store's side gets the collector settings the server runs with
    document = manifest(args.jobs, args.endpoints)
    for kind in args.backends.split(","):
        if kind == "postgres" and not pg_available():
            print("postgres: skipped (no server on 127.0.0.1:5432)")
            continue
        run_backend(kind, document, args.repeat, args.cli)


if __name__ == "__main__":
    main()
