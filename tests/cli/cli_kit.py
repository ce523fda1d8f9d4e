"""Helpers for the CLI tests: a real ``cadenza serve`` and the real ``cadenza``
executable, each a subprocess, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from cadenza.actions.identity import issue_api_key
from cadenza.adapters.clock import SystemClock
from cadenza.adapters.store import open_store
from cadenza.bootstrap import server_keyring
from cadenza.config import Settings
from cadenza.container import secret_box
from cadenza.domain.identity import KeyKind, Scope, User
from cadenza.ids import new_id

LOOPBACK = "127.0.0.1"
SECRET = "cli-tests-secret-that-is-long-enough"
CADENZA = shutil.which("cadenza", path=str(Path(sys.executable).parent)) or "cadenza"
COMMAND_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


@dataclass
class Server:
    """A running ``cadenza serve``: its URL, its database and its environment."""

    url: str
    database_url: str
    workdir: Path
    target: str
    """A demo target the server may call (loopback is allowlisted for it)."""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Tenant:
    """A user of its own (so a tenant of its own) and an API key acting as it."""

    server: Server
    tenant_id: str
    key: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("CADENZA_", "DEMO_TARGET"))
        }
        return {
            **base,
            "CADENZA_URL": self.server.url,
            "CADENZA_API_KEY": self.key,
            "CADENZA_CONFIG": str(self.home / "config.toml"),
            "HOME": str(self.home),
            "COLUMNS": "200",
            **extra,
        }

    def run(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        """The real ``cadenza`` executable with ``args``, as this tenant."""
        done = subprocess.run(
            [CADENZA, *args],
            env=self.env(**env),
            cwd=self.home,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def json(self, *args: str, **env: str) -> Any:
        return self.run(*args, "--json", **env).json()


@functools.cache
def _password_hash() -> str:
    # Argon2 is slow on purpose; tenants made here share one hash.
    return PasswordHash((Argon2Hasher(),)).hash("correct horse battery")


def make_tenant(server: Server, home: Path, scopes: frozenset[Scope]) -> Tenant:
    """A new tenant in the server's database, written directly as an admin would."""
    return asyncio.run(_make_tenant(server, home, scopes))


async def _make_tenant(server: Server, home: Path, scopes: frozenset[Scope]) -> Tenant:
    settings = Settings(secret_key=SECRET, database_url=server.database_url)
    store = await open_store(server.database_url, secret_box(settings))
    clock = SystemClock()
    try:
        now = clock.now()
        user = User(new_id("usr", now), f"{new_id('u', now)}@example.com", _password_hash(), now)
        async with store.transaction() as tx:
            await tx.insert_user(user)
        _, key = await issue_api_key(
            store,
            clock,
            server_keyring(settings),
            user.tenant_id,
            "cli",
            scopes,
            KeyKind.USER,
            None,
        )
    finally:
        await store.close()
    return Tenant(server, user.tenant_id, key, home)


def add_key(tenant: Tenant, scopes: frozenset[Scope]) -> str:
    """Another key of ``tenant`` with only ``scopes``."""
    created = tenant.json(
        "keys", "create", "--name", "narrow", *(f"--scope={s.value}" for s in scopes)
    )
    return str(created["secret"])
