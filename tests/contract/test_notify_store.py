"""One contract, three NotifyStores: the memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from store_builders import T0, secs

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore
from cadenza.adapters.store.notify_sql import SqlNotifyStore
from cadenza.domain import errors
from cadenza.domain.alerts import (
    AlertRule,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Incident,
    NoticeKind,
    RuleKind,
    SmtpSecurity,
)
from cadenza.ports import NotifyStore, Store
from cadenza.testing.notify_store import MemoryNotifyStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def notify(store: Store, secret_key: str) -> NotifyStore:
    """The notification store beside each kind of store: SQL ones share its engine."""
    if isinstance(store, SqlStore):
        return SqlNotifyStore(store.engine, FernetSecretBox(secret_key))
    return MemoryNotifyStore()


def mail_channel(channel_id: str = "chn_a", tenant: str = "t1", name: str = "mail") -> Channel:
    return Channel(
        channel_id,
        tenant,
        name,
        ChannelKind.EMAIL,
        T0,
        smtp_host="smtp.example.com",
        smtp_port=465,
        security=SmtpSecurity.TLS,
        username="cadenza",
        sender="cadenza@example.com",
        recipients=("a@example.com", "b@example.com"),
        secret="app-password",
    )


def rule(rule_id: str = "alr_a", tenant: str = "t1", name: str = "down") -> AlertRule:
    return AlertRule(
        rule_id,
        tenant,
        name,
        RuleKind.SUCCESS_RATE,
        T0,
        job_id="job_1",
        min_success_rate=0.75,
        window=timedelta(minutes=30),
        renotify_every=timedelta(hours=2),
        channel_ids=("chn_a",),
    )


def incident(incident_id: str, subject: str = "ep_1", rule_id: str = "alr_a") -> Incident:
    return Incident(incident_id, "t1", rule_id, subject, "down", "3 failures", T0, T0)


async def test_a_channel_reads_back_whole_with_its_secret_and_names_are_unique(
    notify: NotifyStore,
) -> None:
    await notify.insert_channel(mail_channel())
    assert await notify.get_channel("t1", "chn_a") == mail_channel()
    with pytest.raises(errors.DuplicateName):
        await notify.insert_channel(mail_channel("chn_b"))
    await notify.insert_channel(mail_channel("chn_c", tenant="t2"))
    assert [c.id for c in await notify.list_channels("t1")] == ["chn_a"]
    with pytest.raises(errors.ChannelNotFound):
        await notify.get_channel("t2", "chn_a")
    changed = replace(mail_channel(), smtp_port=25, secret="", recipients=("c@example.com",))
    await notify.replace_channel(changed)
    assert await notify.get_channel("t1", "chn_a") == changed
    await notify.insert_channel(mail_channel("chn_d", name="other"))
    with pytest.raises(errors.DuplicateName):
        await notify.replace_channel(mail_channel("chn_d", name="mail"))
    await notify.delete_channel("t1", "chn_a")
    with pytest.raises(errors.ChannelNotFound):
        await notify.delete_channel("t1", "chn_a")


async def test_the_sql_store_seals_a_channels_secret(store: Store, notify: NotifyStore) -> None:
    await notify.insert_channel(mail_channel())
    if not isinstance(store, SqlStore):
        return
    async with store.engine.connect() as conn:
        raw = (await conn.exec_driver_sql("SELECT secret FROM notify_channels")).scalar_one()
    assert "app-password" not in raw


async def test_a_rule_reads_back_is_replaced_and_deleted(notify: NotifyStore) -> None:
    await notify.insert_rule(rule())
    await notify.insert_rule(rule("alr_b", tenant="t2"))
    assert await notify.get_rule("t1", "alr_a") == rule()
    assert [r.id for r in await notify.list_rules(None)] == ["alr_a", "alr_b"]
    assert [r.id for r in await notify.list_rules("t2")] == ["alr_b"]
    with pytest.raises(errors.DuplicateName):
        await notify.insert_rule(rule("alr_c"))
    changed = replace(rule(), failures=5, renotify_every=None, enabled=False)
    await notify.replace_rule(changed)
    assert await notify.get_rule("t1", "alr_a") == changed
    await notify.delete_rule("t1", "alr_a")
    with pytest.raises(errors.AlertRuleNotFound):
        await notify.get_rule("t1", "alr_a")


async def test_one_incident_is_open_per_rule_and_subject_even_when_racing(
    notify: NotifyStore,
) -> None:
    opened = await asyncio.gather(*(notify.open_incident(incident(f"inc_{i}")) for i in range(4)))
    assert sum(o is not None for o in opened) == 1
    assert await notify.open_incident(incident("inc_x", subject="ep_2")) is not None
    first = next(o for o in opened if o is not None)
    resolved = replace(first, resolved_at=T0 + secs(60), notifications=2)
    await notify.update_incident(resolved)
    assert await notify.get_incident("t1", first.id) == resolved
    assert await notify.open_incident(incident("inc_y")) is not None
    assert {i.id for i in await notify.open_incidents("t1")} == {"inc_x", "inc_y"}


async def test_incidents_page_newest_first_and_filter_open_ones(notify: NotifyStore) -> None:
    for n in range(5):
        await notify.open_incident(incident(f"inc_{n}", subject=f"ep_{n}"))
    await notify.update_incident(replace(incident("inc_1", "ep_1"), resolved_at=T0))
    first = await notify.list_incidents("t1", open_only=False, cursor=None, limit=3)
    assert [i.id for i in first.items] == ["inc_4", "inc_3", "inc_2"]
    rest = await notify.list_incidents("t1", open_only=False, cursor=first.next_cursor, limit=3)
    assert [i.id for i in rest.items] == ["inc_1", "inc_0"]
    assert rest.next_cursor is None
    current = await notify.list_incidents("t1", open_only=True, cursor=None, limit=10)
    assert [i.id for i in current.items] == ["inc_4", "inc_3", "inc_2", "inc_0"]
    with pytest.raises(errors.IncidentNotFound):
        await notify.get_incident("t2", "inc_0")


async def test_deliveries_list_oldest_first_per_incident(notify: NotifyStore) -> None:
    for n, status in enumerate((DeliveryStatus.SENT, DeliveryStatus.FAILED)):
        await notify.insert_delivery(
            Delivery(
                f"dlv_{n}", "t1", "inc_1", "chn_a", NoticeKind.OPENED, status, n + 1, T0, "x" * n
            )
        )
    found = await notify.list_deliveries("t1", "inc_1")
    assert [(d.id, d.status, d.attempts) for d in found] == [
        ("dlv_0", DeliveryStatus.SENT, 1),
        ("dlv_1", DeliveryStatus.FAILED, 2),
    ]
    assert await notify.list_deliveries("t2", "inc_1") == []
