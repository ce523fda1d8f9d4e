"""Fixtures of the CLI tests: one real ``cadenza serve`` (temp SQLite, a free port on
127.0.0.1) and one ``cadenza demo-target`` for the whole session; each test acts as
a tenant of its own, so tests share the server but nothing else."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from cli_kit import CADENZA, LOOPBACK, SECRET, Server, Tenant, free_port, make_tenant

from cadenza.domain.identity import Scope

POLL_SECONDS = 0.1
POLLS = 900  # a hang guard of about 90 s, never a speed requirement


def _wait_for(log: Path, process: subprocess.Popen[bytes], pattern: str) -> re.Match[str]:
    """The first match of ``pattern`` in ``log``, waiting while the process lives."""
    for _ in range(POLLS):
        found = re.search(pattern, log.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found
        assert process.poll() is None, log.read_text()
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"{pattern!r} never appeared in {log}")


def _wait_until_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(POLLS):
        assert process.poll() is None, "cadenza serve exited during startup"
        try:
            httpx2.get(url, timeout=2)
            return
        except httpx2.TransportError:
            time.sleep(POLL_SECONDS)
    raise AssertionError(f"{url} never answered")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def demo_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("demo")
    log = workdir / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CADENZA, "demo-target", "--port", "0", "--speed", "60"],
            stdout=out,
            stderr=out,
            cwd=workdir,
        )
    try:
        yield _wait_for(log, process, r"Demo target on (http://[0-9.:]+)").group(1)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, demo_target: str) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("serve")
    database_url = f"sqlite+aiosqlite:///{workdir}/cadenza.db"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")},
        "CADENZA_DATABASE_URL": database_url,
        "CADENZA_SECRET_KEY": SECRET,
        "CADENZA_HOST": LOOPBACK,
        "CADENZA_PORT": str(port),
        "CADENZA_SSRF_ALLOWLIST": json.dumps([LOOPBACK]),
        "CADENZA_RATE_LIMIT_PER_MINUTE": "100000",
    }
    subprocess.run([CADENZA, "migrate"], env=env, cwd=workdir, check=True, timeout=120)
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([CADENZA, "serve"], env=env, cwd=workdir, stdout=out, stderr=out)
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_until_answering(f"{url}/openapi.json", process)
        yield Server(url, database_url, workdir, demo_target, env)
    finally:
        _stop(process)


@pytest.fixture
def tenant(server: Server, tmp_path: Path) -> Tenant:
    """A fresh tenant with an admin key; its home (and config file) is ``tmp_path``."""
    return make_tenant(server, tmp_path, frozenset({Scope.ADMIN}))
