"""``cadenza admin rotate-secret``: after a rotation, stored secrets are re-encrypted
with the new secret, and what still needs the old one is reported until it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scheduler_kit import postgres_database

from cadenza.actions.base import Services
from cadenza.actions.identity import authenticate_key, issue_api_key
from cadenza.adapters.secrets import SecretKeyError
from cadenza.adapters.store import SqlStore, migrate, open_store
from cadenza.adapters.store.notify_sql import SqlNotifyStore
from cadenza.adapters.store.rekey import rotate_secret
from cadenza.config import Settings
from cadenza.container import secret_box
from cadenza.domain.alerts import Channel, ChannelKind
from cadenza.domain.identity import KeyKind, Scope
from cadenza.domain.model import Endpoint, Header, Job, Method, Request
from cadenza.domain.schedule import IntervalSchedule
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher

pytestmark = pytest.mark.anyio
OLD = "the-secret-in-use-until-today-0001"
NEW = "the-secret-that-replaces-it-0002"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOKEN = "Bearer token-that-must-survive"


class Noop:
    def wake(self) -> None:
        return None


def settings(url: str, secret: str, previous: list[str] | None = None) -> Settings:
    return Settings(
        _env_file=None, database_url=url, secret_key=secret, previous_secret_keys=previous or []
    )


async def open_with(url: str, secret: str, previous: list[str] | None = None) -> SqlStore:
    return await open_store(url, secret_box(settings(url, secret, previous), Path("/nonexistent")))


def services(store: SqlStore, secret: str, previous: tuple[str, ...] = ()) -> Services:
    clock = FrozenClock(T0)
    return Services(
        store,
        clock,
        Noop(),
        FakeDispatcher(clock),
        secret.encode(),
        previous_secret_keys=tuple(p.encode() for p in previous),
    )


async def seed(url: str) -> tuple[str, str, str]:
    """An endpoint with a secret header and an API key, made under the old secret."""
    store = await open_with(url, OLD)
    try:
        job = Job(id="job_rot", tenant_id="usr_rot", name="j", created_at=T0, updated_at=T0)
        request = Request(
            Method.GET, "https://example.com/", headers=(Header("Authorization", TOKEN, True),)
        )
        endpoint = Endpoint(
            id="ep_rot",
            job_id=job.id,
            tenant_id=job.tenant_id,
            name="e",
            request=request,
            baseline=IntervalSchedule(timedelta(minutes=1)),
            created_at=T0,
            updated_at=T0,
        )
        async with store.transaction() as tx:
            await tx.insert_job(job)
            await tx.insert_endpoint(endpoint)
        s = services(store, OLD)
        scopes = frozenset({Scope.JOBS_READ})
        _, key = await issue_api_key(
            store, s.clock, s.keyring, job.tenant_id, "k", scopes, KeyKind.USER, None
        )
    finally:
        await store.close()
    return job.tenant_id, endpoint.id, key


async def secret_header(url: str, secret: str, tenant_id: str, endpoint_id: str) -> str:
    store = await open_with(url, secret)
    try:
        async with store.transaction(readonly=True) as tx:
            endpoint = await tx.get_endpoint(tenant_id, endpoint_id)
        return endpoint.request.headers[0].value
    finally:
        await store.close()


def rotate_cli(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CADENZA_DATABASE_URL": url,
        "CADENZA_SECRET_KEY": NEW,
        "CADENZA_PREVIOUS_SECRET_KEYS": json.dumps([OLD]),
    }
    return subprocess.run(
        [sys.executable, "-m", "cadenza.cli", "admin", "rotate-secret"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_rotate_secret_reencrypts_headers_and_reports_keys_until_they_are_used(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/rotate.db"
    migrate(url)
    tenant_id, endpoint_id, key = await seed(url)
    with pytest.raises(SecretKeyError):  # the new secret alone cannot read it yet
        await secret_header(url, NEW, tenant_id, endpoint_id)

    first = rotate_cli(tmp_path, url)
    assert first.returncode == 0, first.stderr
    assert "of 1 endpoint(s)" in first.stdout
    assert "1 API key(s) still verify with a previous secret" in first.stdout
    assert await secret_header(url, NEW, tenant_id, endpoint_id) == TOKEN

    store = await open_with(url, NEW, [OLD])
    try:
        s = services(store, NEW, (OLD,))
        await authenticate_key(store, s.clock, s.keyring, key)  # moves it to NEW
        alone = services(store, NEW)
        await authenticate_key(store, alone.clock, alone.keyring, key)
    finally:
        await store.close()
    second = rotate_cli(tmp_path, url)
    assert second.returncode == 0, second.stderr
    assert "0 API key(s) still verify" in second.stdout


@pytest.mark.postgres
async def test_rotate_secret_reencrypts_headers_on_postgres_too() -> None:
    with postgres_database() as url:
        tenant_id, endpoint_id, _ = await seed(url)
        store = await open_with(url, NEW, [OLD])
        try:
            report = await rotate_secret(store, services(store, NEW, (OLD,)).keyring, T0)
        finally:
            await store.close()
        assert (report.endpoints_resealed, report.api_keys_on_previous) == (1, 1)
        assert await secret_header(url, NEW, tenant_id, endpoint_id) == TOKEN


async def test_rotate_secret_reencrypts_notification_channel_secrets(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/rotate.db"
    migrate(url)
    store = await open_with(url, OLD)
    mail = Channel(
        "chn_1", "t1", "mail", ChannelKind.EMAIL, T0, smtp_host="smtp.example.com",
        sender="c@example.com", recipients=("o@example.com",), secret="smtp-password",
    )  # fmt: skip
    try:
        await SqlNotifyStore(store.engine, secret_box(settings(url, OLD))).insert_channel(mail)
    finally:
        await store.close()
    rotated = rotate_cli(tmp_path, url)
    assert rotated.returncode == 0, rotated.stderr
    assert "secrets of 1 notification channel(s)" in rotated.stdout
    store = await open_with(url, NEW)
    try:
        alone = SqlNotifyStore(store.engine, secret_box(settings(url, NEW), Path("/nonexistent")))
        assert (await alone.get_channel("t1", "chn_1")).secret == "smtp-password"
    finally:
        await store.close()
