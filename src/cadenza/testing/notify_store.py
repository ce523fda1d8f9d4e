"""``MemoryNotifyStore`` and ``RecordingMailer``: the fakes of ``ports.NotifyStore``
and ``ports.Mailer``.

Every store method finishes without awaiting anything in between, so each is atomic
in one event loop, as each is one statement (or transaction) in SQL.
"""

from __future__ import annotations

from cadenza.domain import errors
from cadenza.domain.alerts import AlertRule, Channel, Delivery, Incident
from cadenza.ports import Mail, Page


class MemoryNotifyStore:
    """Channels, rules, incidents and deliveries in dictionaries."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}
        self._rules: dict[str, AlertRule] = {}
        self._incidents: dict[str, Incident] = {}
        self._deliveries: list[Delivery] = []

    async def insert_channel(self, channel: Channel) -> None:
        if any(
            c.tenant_id == channel.tenant_id and c.name == channel.name
            for c in self._channels.values()
        ):
            raise errors.DuplicateName(f"A channel named {channel.name!r} exists.")
        self._channels[channel.id] = channel

    async def get_channel(self, tenant_id: str, channel_id: str) -> Channel:
        channel = self._channels.get(channel_id)
        if channel is None or channel.tenant_id != tenant_id:
            raise errors.ChannelNotFound(channel_id)
        return channel

    async def list_channels(self, tenant_id: str) -> list[Channel]:
        return sorted(
            (c for c in self._channels.values() if c.tenant_id == tenant_id), key=lambda c: c.id
        )

    async def replace_channel(self, channel: Channel) -> None:
        await self.get_channel(channel.tenant_id, channel.id)
        for known in self._channels.values():
            same = (known.tenant_id, known.name) == (channel.tenant_id, channel.name)
            if same and known.id != channel.id:
                raise errors.DuplicateName(f"A channel named {channel.name!r} exists.")
        self._channels[channel.id] = channel

    async def delete_channel(self, tenant_id: str, channel_id: str) -> None:
        await self.get_channel(tenant_id, channel_id)
        del self._channels[channel_id]

    async def insert_rule(self, rule: AlertRule) -> None:
        self._check_rule_name(rule)
        self._rules[rule.id] = rule

    def _check_rule_name(self, rule: AlertRule) -> None:
        for known in self._rules.values():
            same = (known.tenant_id, known.name) == (rule.tenant_id, rule.name)
            if same and known.id != rule.id:
                raise errors.DuplicateName(f"An alert rule named {rule.name!r} exists.")

    async def get_rule(self, tenant_id: str, rule_id: str) -> AlertRule:
        rule = self._rules.get(rule_id)
        if rule is None or rule.tenant_id != tenant_id:
            raise errors.AlertRuleNotFound(rule_id)
        return rule

    async def list_rules(self, tenant_id: str | None) -> list[AlertRule]:
        rules = (r for r in self._rules.values() if tenant_id in (None, r.tenant_id))
        return sorted(rules, key=lambda r: r.id)

    async def replace_rule(self, rule: AlertRule) -> None:
        await self.get_rule(rule.tenant_id, rule.id)
        self._check_rule_name(rule)
        self._rules[rule.id] = rule

    async def delete_rule(self, tenant_id: str, rule_id: str) -> None:
        await self.get_rule(tenant_id, rule_id)
        del self._rules[rule_id]

    async def open_incident(self, incident: Incident) -> Incident | None:
        for known in self._incidents.values():
            if known.open and (known.rule_id, known.subject) == (
                incident.rule_id,
                incident.subject,
            ):
                return None
        self._incidents[incident.id] = incident
        return incident

    async def get_incident(self, tenant_id: str, incident_id: str) -> Incident:
        incident = self._incidents.get(incident_id)
        if incident is None or incident.tenant_id != tenant_id:
            raise errors.IncidentNotFound(incident_id)
        return incident

    async def update_incident(self, incident: Incident) -> None:
        await self.get_incident(incident.tenant_id, incident.id)
        self._incidents[incident.id] = incident

    async def open_incidents(self, tenant_id: str | None) -> list[Incident]:
        found = (i for i in self._incidents.values() if i.open and tenant_id in (None, i.tenant_id))
        return sorted(found, key=lambda i: i.id)

    async def list_incidents(
        self, tenant_id: str, *, open_only: bool, cursor: str | None, limit: int
    ) -> Page[Incident]:
        found = sorted(
            (
                i
                for i in self._incidents.values()
                if i.tenant_id == tenant_id
                and (i.open or not open_only)
                and (cursor is None or i.id < cursor)
            ),
            key=lambda i: i.id,
            reverse=True,
        )
        items = found[:limit]
        more = len(found) > limit
        return Page(items, items[-1].id if more and items else None)

    async def insert_delivery(self, delivery: Delivery) -> None:
        self._deliveries.append(delivery)

    async def list_deliveries(self, tenant_id: str, incident_id: str) -> list[Delivery]:
        found = (
            d for d in self._deliveries if d.tenant_id == tenant_id and d.incident_id == incident_id
        )
        return sorted(found, key=lambda d: d.id)


class RecordingMailer:
    """Keeps each mail instead of sending it; ``fail`` makes every send refused."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []
        self.fail = False

    async def send(self, mail: Mail) -> None:
        if self.fail:
            raise ConnectionRefusedError("the fake SMTP server refuses")
        self.sent.append(mail)
