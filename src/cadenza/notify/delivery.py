"""``Notifier.deliver``: the one way a notice leaves Cadenza.

Webhook and Slack channels post through the ``Dispatcher`` port, so a notification
gets exactly what every run gets from the HTTP adapter: the SSRF guard (checked at
every connection), the request signature, secret redaction. E-mail goes through the
``Mailer`` port. Each delivery is tried up to ``len(retry_delays) + 1`` times with
growing waits, and recorded, sent or failed, in the ``NotifyStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cadenza.domain.alerts import (
    RETRY_DELAYS,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
    Notice,
)
from cadenza.domain.model import Body, BodyKind, Endpoint, Method, Request
from cadenza.domain.schedule import IntervalSchedule
from cadenza.ids import new_id
from cadenza.notify.messages import mail_text, slack_payload, webhook_payload
from cadenza.ports import Clock, Dispatcher, Mail, Mailer, NotifyStore

_TIMEOUT = timedelta(seconds=10)


class Notifier:
    """Delivers notices to channels; see the module docstring."""

    def __init__(
        self,
        store: NotifyStore,
        dispatcher: Dispatcher,
        mailer: Mailer,
        clock: Clock,
        *,
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
    ) -> None:
        self.store = store
        self._dispatcher = dispatcher
        self._mailer = mailer
        self._clock = clock
        self._delays = tuple(retry_delays)

    async def deliver(self, notice: Notice, channel: Channel, *, retry: bool = True) -> Delivery:
        """Send ``notice`` to ``channel``, retrying with backoff unless ``retry`` is
        false; record the outcome. Never raises for a channel that fails: the failure
        is the delivery's status."""
        attempts, error = 0, ""
        for delay in (*(self._delays if retry else ()), None):
            attempts += 1
            error = await self._attempt(notice, channel)
            if not error or delay is None:
                break
            await self._clock.sleep(delay.total_seconds())
        delivery = Delivery(
            id=new_id("dlv", self._clock.now()),
            tenant_id=channel.tenant_id,
            incident_id=notice.incident_id,
            channel_id=channel.id,
            kind=notice.kind,
            status=DeliveryStatus.FAILED if error else DeliveryStatus.SENT,
            attempts=attempts,
            at=self._clock.now(),
            error=error,
        )
        await self.store.insert_delivery(delivery)
        return delivery

    async def _attempt(self, notice: Notice, channel: Channel) -> str:
        """One try: ``""`` when it went through, else why not."""
        if channel.kind is ChannelKind.EMAIL:
            return await self._mail(notice, channel)
        payload = (
            slack_payload(notice) if channel.kind is ChannelKind.SLACK else webhook_payload(notice)
        )
        endpoint = _one_off(channel, payload, self._clock.now())
        result = await self._dispatcher.dispatch(endpoint, notice.at)
        return "" if result.status.ok else (result.error or f"HTTP {result.http_status}")

    async def _mail(self, notice: Notice, channel: Channel) -> str:
        mail = Mail(
            host=channel.smtp_host,
            port=channel.smtp_port,
            security=channel.security.value,
            username=channel.username,
            password=channel.secret,
            sender=channel.sender,
            recipients=channel.recipients,
            subject=notice.subject_line,
            text=mail_text(notice),
        )
        try:
            await self._mailer.send(mail)
        except (OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return ""


def _one_off(channel: Channel, payload: dict[str, object], now: datetime) -> Endpoint:
    """The channel's POST as an endpoint the dispatcher can run once (never stored)."""
    request = Request(
        method=Method.POST,
        url=channel.target_url,
        body=Body(BodyKind.JSON, json=payload),
        timeout=_TIMEOUT,
    )
    return Endpoint(
        id=channel.id,
        job_id="",
        tenant_id=channel.tenant_id,
        name=channel.name,
        request=request,
        baseline=IntervalSchedule(timedelta(hours=1)),
        created_at=now,
        updated_at=now,
    )
