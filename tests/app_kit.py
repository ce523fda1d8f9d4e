"""What the in-process REST and dashboard tests share: services over a real SQLite
store copied from one migrated template, and tenants signed up with an admin key."""

from __future__ import annotations

import functools
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from cadenza.actions.base import Services
from cadenza.actions.identity import issue_api_key
from cadenza.adapters.http import AddressPolicy
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.auth_sql import SqlAuthStore
from cadenza.adapters.store.retention_sql import SqlRetentionStore
from cadenza.domain.identity import KeyKind, Scope, User
from cadenza.domain.model import Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Claim, Completion
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher
from cadenza.testing.planner_store import MemoryPlannerStore
from catalogue_cases import alert_services

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


async def launch_due(services: Services, worker: str = "w1") -> list[Claim]:
    """Claim every endpoint due and launch its run, as a worker does just before the
    request leaves: an ``overlap=allow`` run is then in flight until completed (the
    frozen clock is first moved to the earliest due time)."""
    clock = services.clock
    due = await services.store.next_due_at()
    if isinstance(clock, FrozenClock) and due is not None and due > clock.now():
        clock.set(due)
    now = clock.now()
    claims = await services.store.claim_due(
        worker, now, lookahead=timedelta(seconds=1), limit=100, lease_margin=timedelta(seconds=60)
    )
    assert await services.store.launch(worker, claims, now) == []
    return claims


async def land(services: Services, claims: list[Claim], worker: str = "w1") -> None:
    """Complete the runs of ``claims`` (launched by ``launch_due``), successfully."""
    now = services.clock.now()
    runs = [
        Run(
            id=new_id("run", now),
            endpoint_id=c.endpoint.id,
            job_id=c.endpoint.job_id,
            tenant_id=c.endpoint.tenant_id,
            scheduled_for=c.scheduled_for,
            started_at=c.scheduled_for,
            finished_at=now,
            status=RunStatus.SUCCESS,
            source=c.source,
            attempt=c.attempt,
            http_status=200,
            worker_id=worker,
        )
        for c in claims
    ]
    done = await services.store.complete(
        worker, [Completion(c, r) for c, r in zip(claims, runs, strict=True)], now
    )
    assert done.lost == []


class CountingWaker:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def migrated_sqlite(directory: Path) -> Path:
    """A migrated SQLite file in ``directory``: a session's template, copied per test
    because migrating takes far longer than a copy."""
    path = directory / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@asynccontextmanager
async def sqlite_services(
    template: Path, directory: Path, secret: bytes
) -> AsyncIterator[Services]:
    """Services as ``cadenza serve`` composes them, over a copy of ``template``, with a
    frozen clock at ``START`` and a dispatcher that sends nothing."""
    path = directory / "app.db"
    shutil.copyfile(template, path)
    store = await open_store(
        f"sqlite+aiosqlite:///{path}", FernetSecretBox(FernetSecretBox.generate_key())
    )
    clock = FrozenClock(START)
    try:
        yield Services(
            store=store,
            clock=clock,
            waker=CountingWaker(),
            dispatcher=FakeDispatcher(clock),
            secret_key=secret,
            planner=MemoryPlannerStore(),
            **alert_services(clock),
            auth_store=SqlAuthStore(store.engine),
            targets=AddressPolicy(),
            retention=SqlRetentionStore(store),
        )
    finally:
        await store.close()


@dataclass
class Tenant:
    """A user (a tenant of their own) and an API key of theirs."""

    tenant_id: str
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@functools.cache
def password_hash() -> str:
    # Argon2 is slow on purpose; the users made here share one hash (signing up has
    # its own tests).
    return PasswordHash((Argon2Hasher(),)).hash(PASSWORD)


async def make_tenant(
    services: Services,
    email: str,
    scopes: frozenset[Scope] = frozenset({Scope.ADMIN}),
    kind: KeyKind = KeyKind.USER,
) -> Tenant:
    now = services.clock.now()
    user = User(new_id("usr", now), email, password_hash(), now)
    async with services.store.transaction() as tx:
        await tx.insert_user(user)
    _, key = await issue_api_key(
        services.store, services.clock, services.keyring, user.tenant_id, "k", scopes, kind, None
    )
    return Tenant(user.tenant_id, email, key)
