"""Alerts: notification channels and alert rules of the caller's tenant, and a
test notification (``cadenza.domain.alerts`` explains incidents).

A channel's secret (SMTP password, Slack webhook URL) is accepted, sealed at rest
and never returned. URLs pass the SSRF guard's checks when saved, like endpoints'.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field

from cadenza.actions.base import Action, AnyAction, Context, Example, record
from cadenza.actions.targets import check_sendable, refuse_unreachable
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    Input,
    Name,
    Output,
    Reason,
    duration,
    id_field,
    seconds,
)
from cadenza.domain import errors
from cadenza.domain.alerts import (
    AlertRule,
    Channel,
    ChannelKind,
    Delivery,
    Notice,
    NoticeKind,
    RuleKind,
    SmtpSecurity,
)
from cadenza.domain.identity import Scope
from cadenza.ids import new_id
from cadenza.ports import NoticeSender, NotifyStore

_READ = frozenset({Scope.JOBS_READ})
_WRITE = frozenset({Scope.JOBS_WRITE})
CHANNEL_ID = EXAMPLE_IDS["channel_id"]
RULE_ID = EXAMPLE_IDS["rule_id"]


def notify_store(ctx: Context) -> NotifyStore:
    store = ctx.services.notify
    if store is None:
        raise errors.Conflict("Alerts need a SQL store (SQLite or PostgreSQL).")
    return store


def notice_sender(ctx: Context) -> NoticeSender:
    sender = ctx.services.notices
    if sender is None:
        raise errors.Conflict("This process cannot send notifications.")
    return sender


# Channels ---------------------------------------------------------------------------


class ChannelOut(Output):
    id: str
    name: str
    kind: ChannelKind
    url: str = Field("", description="Webhook URL; a Slack URL is secret and not shown.")
    smtp_host: str = ""
    smtp_port: int = 0
    security: SmtpSecurity | None = None
    username: str = ""
    sender: str = ""
    recipients: list[str] = Field(default_factory=list)
    has_secret: bool = Field(description="A password or Slack URL is stored (never shown).")
    created_at: datetime

    @classmethod
    def of(cls, c: Channel) -> ChannelOut:
        email = c.kind is ChannelKind.EMAIL
        return cls(
            id=c.id,
            name=c.name,
            kind=c.kind,
            url=c.url,
            smtp_host=c.smtp_host,
            smtp_port=c.smtp_port if email else 0,
            security=c.security if email else None,
            username=c.username,
            sender=c.sender,
            recipients=list(c.recipients),
            has_secret=bool(c.secret),
            created_at=c.created_at,
        )


Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class ChannelFields(Input):
    """A channel's settings, shared with the manifest's ``channels``."""

    name: Name
    kind: ChannelKind
    url: str = Field("", max_length=2000, description="webhook/slack: where to POST.")
    smtp_host: str = Field("", max_length=255)
    smtp_port: int = Field(587, ge=1, le=65535)
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str = Field("", max_length=255)
    password: str = Field("", max_length=1000, description="SMTP password; never returned.")
    sender: str = Field("", max_length=320)
    recipients: list[Address] = Field([], max_length=20)


class CreateChannelInput(ChannelFields):
    reason: Reason = ""


def check_channel_url(ctx: Context, data: ChannelFields) -> None:
    """An HTTP channel's URL is checked like an endpoint's when saved."""
    if data.kind is not ChannelKind.EMAIL:
        if not data.url.startswith(("http://", "https://")):
            raise errors.InvalidUrl("url must be an absolute http(s) URL.", "url")
        check_sendable(data.url, ())
        refuse_unreachable(ctx, data.url)


def channel_of(data: ChannelFields, tenant_id: str, now: datetime, channel_id: str = "") -> Channel:
    """The channel ``data`` describes (``ValidationError`` if incomplete)."""
    slack = data.kind is ChannelKind.SLACK
    return Channel(
        id=channel_id or new_id("chn", now),
        tenant_id=tenant_id,
        name=data.name,
        kind=data.kind,
        created_at=now,
        url="" if slack else data.url,
        smtp_host=data.smtp_host,
        smtp_port=data.smtp_port,
        security=data.security,
        username=data.username,
        sender=data.sender,
        recipients=tuple(data.recipients),
        secret=data.url if slack else data.password,
    )


async def create_channel(ctx: Context, data: CreateChannelInput) -> ChannelOut:
    check_channel_url(ctx, data)
    channel = channel_of(data, ctx.tenant_id, ctx.now())
    await notify_store(ctx).insert_channel(channel)
    async with ctx.store.transaction() as tx:
        changes = {"name": channel.name, "kind": channel.kind.value}
        await record(ctx, tx, "create_channel", ("channel", channel.id), data.reason, changes)
    return ChannelOut.of(channel)


class NoInput(Input):
    pass


class ChannelList(Output):
    items: list[ChannelOut]


async def list_channels(ctx: Context, data: NoInput) -> ChannelList:
    channels = await notify_store(ctx).list_channels(ctx.tenant_id)
    return ChannelList(items=[ChannelOut.of(c) for c in channels])


class ChannelRef(Input):
    channel_id: str = id_field("channel", CHANNEL_ID)
    reason: Reason = ""


class Deleted(Output):
    id: str


async def delete_channel(ctx: Context, data: ChannelRef) -> Deleted:
    store = notify_store(ctx)
    channel = await store.get_channel(ctx.tenant_id, data.channel_id)
    await store.delete_channel(ctx.tenant_id, channel.id)
    async with ctx.store.transaction() as tx:
        await record(ctx, tx, "delete_channel", ("channel", channel.id), data.reason)
    return Deleted(id=channel.id)


class DeliveryOut(Output):
    channel_id: str
    kind: NoticeKind
    status: str = Field(description="sent or failed (after every retry).")
    attempts: int
    at: datetime
    error: str

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            channel_id=d.channel_id,
            kind=d.kind,
            status=d.status.value,
            attempts=d.attempts,
            at=d.at,
            error=d.error,
        )


async def send_test_notification(ctx: Context, data: ChannelRef) -> DeliveryOut:
    channel = await notify_store(ctx).get_channel(ctx.tenant_id, data.channel_id)
    notice = Notice(
        kind=NoticeKind.TEST,
        title=f"Test notification to {channel.name}",
        detail=data.reason or "Sent by send_test_notification: this channel works.",
        at=ctx.now(),
        tenant_id=ctx.tenant_id,
    )
    return DeliveryOut.of(await notice_sender(ctx).deliver(notice, channel, retry=False))


# Rules ------------------------------------------------------------------------------


class RuleFields(Input):
    """An alert rule's settings, shared with the manifest's ``alerts``."""

    kind: RuleKind
    failures: int = Field(3, ge=1, le=1000, description="consecutive_failures: how many.")
    min_success_rate: float = Field(0.9, gt=0, le=1, description="success_rate: threshold.")
    window_seconds: float = Field(3600, ge=60, le=30 * 86400, description="success_rate window.")
    late_after_seconds: float = Field(
        300, ge=10, le=7 * 86400, description="no_run/watchdog: lateness tolerated."
    )
    renotify_every_seconds: float | None = Field(
        None, ge=60, le=7 * 86400, description="Remind while open; null: never."
    )
    enabled: bool = True


class CreateRuleInput(RuleFields):
    name: Name
    job_id: str | None = Field(None, max_length=64, description="Narrow to one job.")
    endpoint_id: str | None = Field(None, max_length=64, description="Narrow to one endpoint.")
    channel_ids: list[str] = Field([], max_length=20, description="Empty: every channel.")
    reason: Reason = ""


class RuleOut(Output):
    id: str
    name: str
    kind: RuleKind
    job_id: str | None
    endpoint_id: str | None
    failures: int
    min_success_rate: float
    window_seconds: float
    late_after_seconds: float
    renotify_every_seconds: float | None
    channel_ids: list[str]
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, r: AlertRule) -> RuleOut:
        return cls(
            id=r.id,
            name=r.name,
            kind=r.kind,
            job_id=r.job_id,
            endpoint_id=r.endpoint_id,
            failures=r.failures,
            min_success_rate=r.min_success_rate,
            window_seconds=r.window.total_seconds(),
            late_after_seconds=r.late_after.total_seconds(),
            renotify_every_seconds=seconds(r.renotify_every),
            channel_ids=list(r.channel_ids),
            enabled=r.enabled,
            created_at=r.created_at,
        )


def rule_of(
    fields: RuleFields,
    tenant_id: str,
    name: str,
    now: datetime,
    *,
    rule_id: str = "",
    scope: tuple[str | None, str | None] = (None, None),
    channel_ids: tuple[str, ...] = (),
) -> AlertRule:
    return AlertRule(
        id=rule_id or new_id("alr", now),
        tenant_id=tenant_id,
        name=name,
        kind=fields.kind,
        created_at=now,
        job_id=scope[0],
        endpoint_id=scope[1],
        failures=fields.failures,
        min_success_rate=fields.min_success_rate,
        window=timedelta(seconds=fields.window_seconds),
        late_after=timedelta(seconds=fields.late_after_seconds),
        renotify_every=duration(fields.renotify_every_seconds),
        channel_ids=channel_ids,
        enabled=fields.enabled,
    )


async def _check_targets(ctx: Context, data: CreateRuleInput) -> None:
    async with ctx.store.transaction(readonly=True) as tx:
        if data.job_id is not None:
            await tx.get_job(ctx.tenant_id, data.job_id)
        if data.endpoint_id is not None:
            await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
    known = {c.id for c in await notify_store(ctx).list_channels(ctx.tenant_id)}
    for index, channel_id in enumerate(data.channel_ids):
        if channel_id not in known:
            raise errors.ValidationError(f"No channel {channel_id!r}.", f"channel_ids.{index}")


async def create_alert_rule(ctx: Context, data: CreateRuleInput) -> RuleOut:
    await _check_targets(ctx, data)
    rule = rule_of(
        data,
        ctx.tenant_id,
        data.name,
        ctx.now(),
        scope=(data.job_id, data.endpoint_id),
        channel_ids=tuple(data.channel_ids),
    )
    await notify_store(ctx).insert_rule(rule)
    async with ctx.store.transaction() as tx:
        changes = {"name": rule.name, "kind": rule.kind.value}
        await record(ctx, tx, "create_alert_rule", ("alert_rule", rule.id), data.reason, changes)
    return RuleOut.of(rule)


class RuleList(Output):
    items: list[RuleOut]


async def list_alert_rules(ctx: Context, data: NoInput) -> RuleList:
    rules = await notify_store(ctx).list_rules(ctx.tenant_id)
    return RuleList(items=[RuleOut.of(r) for r in rules])


class RuleRef(Input):
    rule_id: str = id_field("alert rule", RULE_ID)
    reason: Reason = ""


async def delete_alert_rule(ctx: Context, data: RuleRef) -> Deleted:
    store = notify_store(ctx)
    rule = await store.get_rule(ctx.tenant_id, data.rule_id)
    await store.delete_rule(ctx.tenant_id, rule.id)
    async with ctx.store.transaction() as tx:
        await record(ctx, tx, "delete_alert_rule", ("alert_rule", rule.id), data.reason)
    return Deleted(id=rule.id)


_WEBHOOK = {"name": "ops-hook", "kind": "webhook", "url": "https://hooks.example.com/cadenza"}


def action(name: str, summary: str, description: str, **kw: Any) -> AnyAction:
    """An action of this area: positional names, the rest as ``Action`` takes it."""
    return Action(name=name, summary=summary, description=description, **kw)


ACTIONS = (
    action(
        "create_channel",
        "Add a notification channel",
        "Adds a webhook (signed), Slack incoming-webhook or SMTP e-mail channel. "
        "Secrets are stored encrypted, never returned.",
        input_model=CreateChannelInput,
        output_model=ChannelOut,
        handler=create_channel,
        scopes=_WRITE,
        method="POST",
        path="/channels",
        mutates=True,
        idempotent=False,
        success_status=201,
        tags=("alerts",),
        examples=(Example(_WEBHOOK),),
    ),
    action(
        "list_channels",
        "List notification channels",
        "The tenant's channels, without secrets.",
        input_model=NoInput,
        output_model=ChannelList,
        handler=list_channels,
        scopes=_READ,
        method="GET",
        path="/channels",
        mutates=False,
        idempotent=True,
        tags=("alerts",),
        examples=(Example({}),),
    ),
    action(
        "send_test_notification",
        "Send a test notification",
        "Sends a test notice to a channel now (one attempt) and returns the delivery.",
        input_model=ChannelRef,
        output_model=DeliveryOut,
        handler=send_test_notification,
        scopes=_WRITE,
        method="POST",
        path="/channels/{channel_id}/test",
        mutates=True,
        idempotent=False,
        tags=("alerts",),
        examples=(Example({"channel_id": CHANNEL_ID}),),
    ),
    action(
        "delete_channel",
        "Delete a notification channel",
        "Deletes a channel; rules naming it stop using it.",
        input_model=ChannelRef,
        output_model=Deleted,
        handler=delete_channel,
        scopes=_WRITE,
        method="DELETE",
        path="/channels/{channel_id}",
        mutates=True,
        idempotent=False,
        destructive=True,
        tags=("alerts",),
        examples=(Example({"channel_id": CHANNEL_ID}),),
    ),
    action(
        "create_alert_rule",
        "Add an alert rule",
        "Watches the tenant, a job or an endpoint; one incident per breach, notified on "
        "open, optionally reminded, and on recovery.",
        input_model=CreateRuleInput,
        output_model=RuleOut,
        handler=create_alert_rule,
        scopes=_WRITE,
        method="POST",
        path="/alert-rules",
        mutates=True,
        idempotent=False,
        success_status=201,
        tags=("alerts",),
        examples=(Example({"name": "api-down", "kind": "consecutive_failures", "failures": 3}),),
    ),
    action(
        "list_alert_rules",
        "List alert rules",
        "The tenant's alert rules.",
        input_model=NoInput,
        output_model=RuleList,
        handler=list_alert_rules,
        scopes=_READ,
        method="GET",
        path="/alert-rules",
        mutates=False,
        idempotent=True,
        tags=("alerts",),
        examples=(Example({}),),
    ),
    action(
        "delete_alert_rule",
        "Delete an alert rule",
        "Deletes a rule; its incidents stay as history.",
        input_model=RuleRef,
        output_model=Deleted,
        handler=delete_alert_rule,
        scopes=_WRITE,
        method="DELETE",
        path="/alert-rules/{rule_id}",
        mutates=True,
        idempotent=False,
        destructive=True,
        tags=("alerts",),
        examples=(Example({"rule_id": RULE_ID}),),
    ),
)
