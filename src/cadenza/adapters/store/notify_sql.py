"""``SqlNotifyStore``: ``cadenza.ports.NotifyStore`` over the SQL store's engine.

Shares the engine of ``SqlStore`` like the planner's and the sign-in stores; each
method is one short transaction. Opening an incident relies on the partial unique
index ``uq_incidents_open``: a second open incident for the same rule and subject
fails to insert, and the caller learns it lost the race (``None``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cadenza.adapters.store.notify_tables import (
    alert_rules,
    incidents,
    notify_channels,
    notify_deliveries,
)
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
from cadenza.ports import Page, SecretBox

_C = notify_channels.c
_R = alert_rules.c
_I = incidents.c
_D = notify_deliveries.c


class SqlNotifyStore:
    """See the module docstring."""

    def __init__(self, engine: AsyncEngine, secret_box: SecretBox) -> None:
        self._engine = engine
        self._box = secret_box

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    async def _run(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        async with self._tx() as conn:
            return await conn.execute(statement)

    # Channels ---------------------------------------------------------------------

    async def insert_channel(self, channel: Channel) -> None:
        row = {
            "id": channel.id,
            "tenant_id": channel.tenant_id,
            "name": channel.name,
            "kind": channel.kind.value,
            "config": json.dumps(_channel_config(channel)),
            "secret": self._box.seal(channel.secret) if channel.secret else "",
            "created_at": channel.created_at,
        }
        try:
            await self._run(notify_channels.insert().values(**row))
        except IntegrityError as exc:
            raise errors.DuplicateName(f"A channel named {channel.name!r} exists.") from exc

    async def get_channel(self, tenant_id: str, channel_id: str) -> Channel:
        query = sa.select(notify_channels).where(_C.id == channel_id, _C.tenant_id == tenant_id)
        row = (await self._run(query)).first()
        if row is None:
            raise errors.ChannelNotFound(channel_id)
        return self._channel(row)

    async def list_channels(self, tenant_id: str) -> list[Channel]:
        query = sa.select(notify_channels).where(_C.tenant_id == tenant_id).order_by(_C.id)
        return [self._channel(row) for row in await self._run(query)]

    async def replace_channel(self, channel: Channel) -> None:
        statement = (
            notify_channels.update()
            .where(_C.id == channel.id, _C.tenant_id == channel.tenant_id)
            .values(
                name=channel.name,
                kind=channel.kind.value,
                config=json.dumps(_channel_config(channel)),
                secret=self._box.seal(channel.secret) if channel.secret else "",
            )
        )
        try:
            result = await self._run(statement)
        except IntegrityError as exc:
            raise errors.DuplicateName(f"A channel named {channel.name!r} exists.") from exc
        if result.rowcount == 0:
            raise errors.ChannelNotFound(channel.id)

    async def delete_channel(self, tenant_id: str, channel_id: str) -> None:
        statement = notify_channels.delete().where(_C.id == channel_id, _C.tenant_id == tenant_id)
        if (await self._run(statement)).rowcount == 0:
            raise errors.ChannelNotFound(channel_id)

    def _channel(self, row: sa.Row[Any]) -> Channel:
        config = json.loads(row.config)
        return Channel(
            id=row.id,
            tenant_id=row.tenant_id,
            name=row.name,
            kind=ChannelKind(row.kind),
            created_at=row.created_at,
            url=config.get("url", ""),
            smtp_host=config.get("smtp_host", ""),
            smtp_port=config.get("smtp_port", 587),
            security=SmtpSecurity(config.get("security", "starttls")),
            username=config.get("username", ""),
            sender=config.get("sender", ""),
            recipients=tuple(config.get("recipients", ())),
            secret=self._box.open(row.secret) if row.secret else "",
        )

    # Rules ------------------------------------------------------------------------

    async def insert_rule(self, rule: AlertRule) -> None:
        row = _rule_row(rule)
        try:
            await self._run(alert_rules.insert().values(**row))
        except IntegrityError as exc:
            raise errors.DuplicateName(f"An alert rule named {rule.name!r} exists.") from exc

    async def get_rule(self, tenant_id: str, rule_id: str) -> AlertRule:
        query = sa.select(alert_rules).where(_R.id == rule_id, _R.tenant_id == tenant_id)
        row = (await self._run(query)).first()
        if row is None:
            raise errors.AlertRuleNotFound(rule_id)
        return _rule(row)

    async def list_rules(self, tenant_id: str | None) -> list[AlertRule]:
        query = sa.select(alert_rules).order_by(_R.id)
        if tenant_id is not None:
            query = query.where(_R.tenant_id == tenant_id)
        return [_rule(row) for row in await self._run(query)]

    async def replace_rule(self, rule: AlertRule) -> None:
        row = _rule_row(rule)
        statement = (
            alert_rules.update()
            .where(_R.id == rule.id, _R.tenant_id == rule.tenant_id)
            .values(name=row["name"], kind=row["kind"], config=row["config"])
        )
        try:
            result = await self._run(statement)
        except IntegrityError as exc:
            raise errors.DuplicateName(f"An alert rule named {rule.name!r} exists.") from exc
        if result.rowcount == 0:
            raise errors.AlertRuleNotFound(rule.id)

    async def delete_rule(self, tenant_id: str, rule_id: str) -> None:
        statement = alert_rules.delete().where(_R.id == rule_id, _R.tenant_id == tenant_id)
        if (await self._run(statement)).rowcount == 0:
            raise errors.AlertRuleNotFound(rule_id)

    # Incidents --------------------------------------------------------------------

    async def open_incident(self, incident: Incident) -> Incident | None:
        try:
            await self._run(incidents.insert().values(**_incident_row(incident)))
        except IntegrityError:
            return None
        return incident

    async def get_incident(self, tenant_id: str, incident_id: str) -> Incident:
        query = sa.select(incidents).where(_I.id == incident_id, _I.tenant_id == tenant_id)
        row = (await self._run(query)).first()
        if row is None:
            raise errors.IncidentNotFound(incident_id)
        return _incident(row)

    async def update_incident(self, incident: Incident) -> None:
        row = _incident_row(incident)
        statement = (
            incidents.update()
            .where(_I.id == incident.id, _I.tenant_id == incident.tenant_id)
            .values({k: v for k, v in row.items() if k not in ("id", "tenant_id")})
        )
        if (await self._run(statement)).rowcount == 0:
            raise errors.IncidentNotFound(incident.id)

    async def open_incidents(self, tenant_id: str | None) -> list[Incident]:
        query = sa.select(incidents).where(_I.resolved_at.is_(None)).order_by(_I.id)
        if tenant_id is not None:
            query = query.where(_I.tenant_id == tenant_id)
        return [_incident(row) for row in await self._run(query)]

    async def list_incidents(
        self, tenant_id: str, *, open_only: bool, cursor: str | None, limit: int
    ) -> Page[Incident]:
        query = sa.select(incidents).where(_I.tenant_id == tenant_id)
        if open_only:
            query = query.where(_I.resolved_at.is_(None))
        if cursor is not None:
            query = query.where(_I.id < cursor)
        rows = list(await self._run(query.order_by(_I.id.desc()).limit(limit + 1)))
        items = [_incident(row) for row in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit else None)

    # Deliveries -------------------------------------------------------------------

    async def insert_delivery(self, delivery: Delivery) -> None:
        row = {
            "id": delivery.id,
            "tenant_id": delivery.tenant_id,
            "incident_id": delivery.incident_id,
            "channel_id": delivery.channel_id,
            "kind": delivery.kind.value,
            "status": delivery.status.value,
            "attempts": delivery.attempts,
            "at": delivery.at,
            "error": delivery.error,
        }
        await self._run(notify_deliveries.insert().values(**row))

    async def list_deliveries(self, tenant_id: str, incident_id: str) -> list[Delivery]:
        query = (
            sa.select(notify_deliveries)
            .where(_D.incident_id == incident_id, _D.tenant_id == tenant_id)
            .order_by(_D.id)
        )
        return [
            Delivery(
                id=row.id,
                tenant_id=row.tenant_id,
                incident_id=row.incident_id,
                channel_id=row.channel_id,
                kind=NoticeKind(row.kind),
                status=DeliveryStatus(row.status),
                attempts=row.attempts,
                at=row.at,
                error=row.error,
            )
            for row in await self._run(query)
        ]


def _channel_config(channel: Channel) -> dict[str, Any]:
    if channel.kind is ChannelKind.EMAIL:
        return {
            "smtp_host": channel.smtp_host,
            "smtp_port": channel.smtp_port,
            "security": channel.security.value,
            "username": channel.username,
            "sender": channel.sender,
            "recipients": list(channel.recipients),
        }
    return {"url": channel.url}


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _rule_row(rule: AlertRule) -> dict[str, Any]:
    config = {
        "job_id": rule.job_id,
        "endpoint_id": rule.endpoint_id,
        "failures": rule.failures,
        "min_success_rate": rule.min_success_rate,
        "window_seconds": _seconds(rule.window),
        "late_after_seconds": _seconds(rule.late_after),
        "renotify_every_seconds": _seconds(rule.renotify_every),
        "channel_ids": list(rule.channel_ids),
        "enabled": rule.enabled,
    }
    return {
        "id": rule.id,
        "tenant_id": rule.tenant_id,
        "name": rule.name,
        "kind": rule.kind.value,
        "config": json.dumps(config),
        "created_at": rule.created_at,
    }


def _rule(row: sa.Row[Any]) -> AlertRule:
    config = json.loads(row.config)
    renotify = config["renotify_every_seconds"]
    return AlertRule(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        kind=RuleKind(row.kind),
        created_at=row.created_at,
        job_id=config["job_id"],
        endpoint_id=config["endpoint_id"],
        failures=config["failures"],
        min_success_rate=config["min_success_rate"],
        window=timedelta(seconds=config["window_seconds"]),
        late_after=timedelta(seconds=config["late_after_seconds"]),
        renotify_every=None if renotify is None else timedelta(seconds=renotify),
        channel_ids=tuple(config["channel_ids"]),
        enabled=config["enabled"],
    )


def _incident_row(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "tenant_id": incident.tenant_id,
        "rule_id": incident.rule_id,
        "subject": incident.subject,
        "title": incident.title,
        "detail": incident.detail,
        "opened_at": incident.opened_at,
        "notified_at": incident.notified_at,
        "resolved_at": incident.resolved_at,
        "notifications": incident.notifications,
    }


def _incident(row: sa.Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        tenant_id=row.tenant_id,
        rule_id=row.rule_id,
        subject=row.subject,
        title=row.title,
        detail=row.detail,
        opened_at=row.opened_at,
        notified_at=row.notified_at,
        resolved_at=row.resolved_at,
        notifications=row.notifications,
    )
