"""Alerts end to end: real SQLite, a webhook receiver and an SMTP server (aiosmtpd)
on 127.0.0.1, the real HTTP dispatcher (signed, SSRF-guarded) and SMTP mailer.

Time is a ``FrozenClock``: the evaluator ticks at chosen instants and retry waits
advance the clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller

from cadenza.actions import BY_NAME, invoke
from cadenza.actions.base import Context, Services
from cadenza.adapters.http import AddressPolicy, HttpDispatcher, signing
from cadenza.adapters.notify import SmtpMailer
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate, open_store
from cadenza.adapters.store.notify_sql import SqlNotifyStore
from cadenza.domain.alerts import DeliveryStatus, NoticeKind
from cadenza.domain.identity import ALL_SCOPES
from cadenza.domain.model import Actor, ActorKind, Run, RunStatus
from cadenza.ids import new_id
from cadenza.notify.delivery import Notifier
from cadenza.notify.incidents import AlertEvaluator
from cadenza.ports import Completion, WorkerInfo
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher

if TYPE_CHECKING:
    # Only a type: ``conftest`` names another module when other test folders load first.
    from conftest import Target

pytestmark = pytest.mark.anyio
LOOPBACK = ["127.0.0.1/32"]

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "tnt_alerts"
SIGNING_KEY = "whsec-test-key"
RETRIES = (timedelta(seconds=1), timedelta(seconds=2))


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope sender, recipients, raw message)."""

    mails: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@dataclass
class World:
    services: Services
    clock: FrozenClock
    evaluator: AlertEvaluator
    ctx: Context

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        return (await invoke(BY_NAME[name], self.ctx, arguments)).model_dump(mode="json")

    async def tick(self) -> None:
        await self.evaluator.tick(self.clock.now())


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'alerts.db'}"
    await asyncio.to_thread(migrate, url)
    box = FernetSecretBox(FernetSecretBox.generate_key())
    store = await open_store(url, box)
    assert isinstance(store, SqlStore)
    clock = FrozenClock(START)
    http = HttpDispatcher(clock, allowlist=LOOPBACK, signing_keys=[SIGNING_KEY])
    notify = SqlNotifyStore(store.engine, box)
    mailer = SmtpMailer(AddressPolicy.from_allowlist(LOOPBACK))
    notifier = Notifier(notify, http, mailer, clock, retry_delays=RETRIES)
    services = Services(
        store=store,
        clock=clock,
        waker=_NoWaker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=b"k" * 32,
        targets=AddressPolicy.from_allowlist(LOOPBACK),
        notify=notify,
        notices=notifier,
    )
    actor = Actor(ActorKind.USER, "usr_alice", "alice")
    ctx = Context.for_caller(services, TENANT, actor, ALL_SCOPES)
    try:
        yield World(services, clock, AlertEvaluator(store, notify, notifier), ctx)
    finally:
        await http.close()
        await store.close()


class _NoWaker:
    def wake(self) -> None:
        pass


async def _endpoint(world: World, target: Target) -> str:
    job = await world.call("create_job", {"name": "shop"})
    endpoint = await world.call(
        "add_endpoint",
        {
            "job_id": job["id"],
            "name": "checkout",
            "request": {"url": target.url("/ok")},
            "baseline": {"interval_seconds": 60},
        },
    )
    return str(endpoint["id"])


async def _run_once(world: World, status: RunStatus) -> None:
    """The due endpoint runs once, through the store's claim and completion."""
    store, clock = world.services.store, world.clock
    due = await store.next_due_at()
    assert due is not None
    clock.set(max(due, clock.now()))
    now = clock.now()
    claims = await store.claim_due(
        "w1", now, lookahead=timedelta(seconds=1), limit=10, lease_margin=timedelta(seconds=30)
    )
    assert len(claims) == 1
    claim = claims[0]
    run = Run(
        id=new_id("run", now),
        endpoint_id=claim.endpoint.id,
        job_id=claim.endpoint.job_id,
        tenant_id=claim.endpoint.tenant_id,
        scheduled_for=claim.scheduled_for,
        started_at=now,
        finished_at=now + timedelta(milliseconds=50),
        status=status,
        source=claim.source,
        http_status=200 if status.ok else 500,
    )
    await store.complete("w1", [Completion(claim, run)], now)


async def _channels(world: World, target: Target, smtp_port: int, hook: str = "/ok") -> None:
    await world.call("create_channel", {"name": "hook", "kind": "webhook", "url": target.url(hook)})
    await world.call(
        "create_channel", {"name": "chat", "kind": "slack", "url": target.url("/status/200")}
    )
    await world.call(
        "create_channel",
        {
            "name": "mail",
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "security": "none",
            "sender": "cadenza@example.com",
            "recipients": ["oncall@example.com"],
        },
    )


def _posts(target: Target, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in target.received if r.path == path and r.method == "POST"]


async def test_three_failures_open_one_incident_with_one_alert_per_channel_and_one_recovery(
    world: World, http_target: Target, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    endpoint_id = await _endpoint(world, http_target)
    await _channels(world, http_target, port)
    await world.call(
        "create_alert_rule",
        {"name": "down", "kind": "consecutive_failures", "failures": 3, "endpoint_id": endpoint_id},
    )
    for _ in range(2):
        await _run_once(world, RunStatus.FAILURE)
        await world.tick()
    assert (await world.call("list_incidents", {}))["items"] == []

    for _ in range(2):  # the third failure opens it; the fourth changes nothing
        await _run_once(world, RunStatus.FAILURE)
        await world.tick()
    incidents = (await world.call("list_incidents", {"open_only": True}))["items"]
    assert len(incidents) == 1
    assert incidents[0]["subject"] == endpoint_id
    hooks, chats = _posts(http_target, "/ok"), _posts(http_target, "/status/200")
    assert [h["event"] for h in hooks] == ["incident.opened"]
    assert hooks[0]["incident_id"] == incidents[0]["id"]
    assert "checkout is failing" in chats[0]["text"]
    assert len(chats) == 1
    assert len(mailbox.mails) == 1
    assert b"ALERT: checkout is failing" in mailbox.mails[0][2]
    signed = next(r for r in http_target.received if r.path == "/ok" and r.method == "POST")
    assert signing.HEADER in signed.headers

    await _run_once(world, RunStatus.SUCCESS)
    await world.tick()
    await world.tick()
    assert [h["event"] for h in _posts(http_target, "/ok")] == [
        "incident.opened",
        "incident.resolved",
    ]
    assert len(_posts(http_target, "/status/200")) == 2
    assert len(mailbox.mails) == 2
    assert b"RESOLVED" in mailbox.mails[1][2]
    detail = await world.call("get_incident", {"incident_id": incidents[0]["id"]})
    assert detail["resolved_at"] is not None
    kinds = sorted((d["kind"], d["status"]) for d in detail["deliveries"])
    assert kinds == [("opened", "sent")] * 3 + [("resolved", "sent")] * 3


async def test_a_channel_that_is_down_is_retried_and_its_delivery_recorded_as_failed(
    world: World, http_target: Target, smtp: tuple[Mailbox, int]
) -> None:
    _, port = smtp
    endpoint_id = await _endpoint(world, http_target)
    await _channels(world, http_target, port, hook="/status/503")
    await world.call(
        "create_alert_rule",
        {"name": "down", "kind": "consecutive_failures", "failures": 1, "endpoint_id": endpoint_id},
    )
    await _run_once(world, RunStatus.FAILURE)
    await world.tick()
    assert http_target.hits["/status/503"] == len(RETRIES) + 1
    incident = (await world.call("list_incidents", {}))["items"][0]
    deliveries = (await world.call("get_incident", {"incident_id": incident["id"]}))["deliveries"]
    by_status = {d["status"] for d in deliveries}
    assert by_status == {"sent", "failed"}
    failed = [d for d in deliveries if d["status"] == DeliveryStatus.FAILED]
    assert len(failed) == 1
    assert failed[0]["attempts"] == len(RETRIES) + 1
    assert "503" in failed[0]["error"]


async def test_a_test_notification_reaches_an_smtp_server_and_a_refused_one_fails_at_once(
    world: World, http_target: Target, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    await _channels(world, http_target, port)
    channels = {c["name"]: c for c in (await world.call("list_channels", {}))["items"]}
    sent = await world.call("send_test_notification", {"channel_id": channels["mail"]["id"]})
    assert (sent["status"], sent["kind"]) == ("sent", NoticeKind.TEST)
    assert b"TEST" in mailbox.mails[0][2]
    closed = _free_port()
    broken = await world.call(
        "create_channel",
        {
            "name": "nobody",
            "kind": "email",
            "smtp_host": "127.0.0.1",
            "smtp_port": closed,
            "security": "none",
            "sender": "cadenza@example.com",
            "recipients": ["oncall@example.com"],
        },
    )
    failed = await world.call("send_test_notification", {"channel_id": broken["id"]})
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert "ConnectionRefusedError" in failed["error"]


async def test_a_stale_worker_raises_the_watchdog_incident_and_its_return_resolves_it(
    world: World, http_target: Target, smtp: tuple[Mailbox, int]
) -> None:
    _, port = smtp
    await _channels(world, http_target, port)
    await world.call(
        "create_alert_rule", {"name": "wd", "kind": "watchdog", "late_after_seconds": 60}
    )
    store, now = world.services.store, world.clock.now()
    await store.register_worker(WorkerInfo("w-stale", "host-a", 42, now, now))
    await world.tick()
    assert (await world.call("list_incidents", {}))["items"] == []

    world.clock.advance(timedelta(minutes=5))
    await world.tick()
    await world.tick()
    (incident,) = (await world.call("list_incidents", {"open_only": True}))["items"]
    assert incident["subject"] == "worker:w-stale"
    assert [h["event"] for h in _posts(http_target, "/ok")] == ["incident.opened"]

    await store.heartbeat_worker("w-stale", world.clock.now())
    await world.tick()
    assert (await world.call("list_incidents", {"open_only": True}))["items"] == []
    assert [h["event"] for h in _posts(http_target, "/ok")] == [
        "incident.opened",
        "incident.resolved",
    ]
