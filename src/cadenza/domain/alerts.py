"""Alerts: channels that carry notifications, rules that watch endpoints, and the
incidents they open. Pure.

A rule's condition is judged from an endpoint's state (or the planner's queue, or
the workers' heartbeats) at ``now``. While it holds, one **incident** is open for
the rule and its subject (an endpoint, a worker, the due backlog); it is notified
once when it opens, again every ``renotify_every`` if set, and once more when the
condition clears and it resolves. Runs never notify one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cadenza.domain import errors
from cadenza.domain.model import Endpoint, RunStatus


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class Channel:
    """Where a tenant's notifications go. ``secret`` is the SMTP password or the
    Slack webhook URL (whose path is its credential): sealed at rest, never shown."""

    id: str
    tenant_id: str
    name: str
    kind: ChannelKind
    created_at: datetime
    url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str = ""
    sender: str = ""
    recipients: tuple[str, ...] = ()
    secret: str = ""

    def __post_init__(self) -> None:
        if self.kind is ChannelKind.WEBHOOK and not self.url:
            raise errors.ValidationError("A webhook channel needs a url.", "url")
        if self.kind is ChannelKind.SLACK and not self.secret:
            raise errors.ValidationError("A Slack channel needs its webhook url.", "url")
        if self.kind is ChannelKind.EMAIL and not (
            self.smtp_host and self.sender and self.recipients
        ):
            raise errors.ValidationError(
                "An e-mail channel needs smtp_host, sender and recipients.", "smtp_host"
            )

    @property
    def target_url(self) -> str:
        """The URL an HTTP channel posts to (a Slack channel's is its secret)."""
        return self.secret if self.kind is ChannelKind.SLACK else self.url


class RuleKind(StrEnum):
    CONSECUTIVE_FAILURES = "consecutive_failures"
    SUCCESS_RATE = "success_rate"
    NO_RUN = "no_run"
    PLANNER_ESCALATION = "planner_escalation"
    WATCHDOG = "watchdog"


ENDPOINT_KINDS = frozenset({RuleKind.CONSECUTIVE_FAILURES, RuleKind.SUCCESS_RATE, RuleKind.NO_RUN})


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One condition to watch. ``job_id``/``endpoint_id`` narrow it (neither: every
    endpoint of the tenant); ``channel_ids`` empty means every channel of the tenant.

    ``failures``: consecutive failures that open an incident. ``min_success_rate``
    over ``window``: the success-rate threshold. ``late_after``: how long past its
    planned time an endpoint may go without running (no_run), or how stale a
    heartbeat or a due run may be (watchdog).
    """

    id: str
    tenant_id: str
    name: str
    kind: RuleKind
    created_at: datetime
    job_id: str | None = None
    endpoint_id: str | None = None
    failures: int = 3
    min_success_rate: float = 0.9
    window: timedelta = timedelta(hours=1)
    late_after: timedelta = timedelta(minutes=5)
    renotify_every: timedelta | None = None
    channel_ids: tuple[str, ...] = ()
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise errors.ValidationError("failures must be at least 1.", "failures")
        if not 0.0 < self.min_success_rate <= 1.0:
            raise errors.ValidationError(
                "min_success_rate must be above 0 and at most 1.", "min_success_rate"
            )
        if self.renotify_every is not None and self.renotify_every < timedelta(minutes=1):
            raise errors.ValidationError(
                "renotify_every must be at least 60 s.", "renotify_every_seconds"
            )
        if self.kind is RuleKind.WATCHDOG and (self.job_id or self.endpoint_id):
            raise errors.ValidationError("A watchdog rule watches the whole service.", "job_id")

    def covers(self, endpoint: Endpoint) -> bool:
        if self.endpoint_id is not None:
            return endpoint.id == self.endpoint_id
        return self.job_id is None or endpoint.job_id == self.job_id


@dataclass(frozen=True, slots=True)
class Incident:
    """An open (or resolved) breach of a rule by one subject."""

    id: str
    tenant_id: str
    rule_id: str
    subject: str
    title: str
    detail: str
    opened_at: datetime
    notified_at: datetime
    resolved_at: datetime | None = None
    notifications: int = 1

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    def reminder_due(self, rule: AlertRule, now: datetime) -> bool:
        every = rule.renotify_every
        return self.open and every is not None and now - self.notified_at >= every


class NoticeKind(StrEnum):
    OPENED = "opened"
    REMINDER = "reminder"
    RESOLVED = "resolved"
    TEST = "test"


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Notice:
    """What one notification says, whatever the channel."""

    kind: NoticeKind
    title: str
    detail: str
    at: datetime
    tenant_id: str
    incident_id: str = ""
    rule: str = ""
    subject: str = ""

    @property
    def subject_line(self) -> str:
        prefix = {
            NoticeKind.OPENED: "[Cadenza] ALERT",
            NoticeKind.REMINDER: "[Cadenza] STILL FAILING",
            NoticeKind.RESOLVED: "[Cadenza] RESOLVED",
            NoticeKind.TEST: "[Cadenza] TEST",
        }[self.kind]
        return f"{prefix}: {self.title}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notice sent (or not) to one channel, after ``attempts`` tries."""

    id: str
    tenant_id: str
    incident_id: str
    channel_id: str
    kind: NoticeKind
    status: DeliveryStatus
    attempts: int
    at: datetime
    error: str = ""


@dataclass(frozen=True, slots=True)
class Breach:
    """A condition that holds: what to call it and why."""

    title: str
    detail: str


def endpoint_breach(
    rule: AlertRule,
    endpoint: Endpoint,
    now: datetime,
    *,
    incident_open: bool,
    recent: tuple[RunStatus, ...] = (),
) -> Breach | None:
    """The breach of an endpoint rule, or ``None`` when its condition is clear.

    An open incident stays open until the endpoint recovers (a success, a rate back
    above the threshold, a run on time), so one flaky run does not flap it.
    ``recent`` is the endpoint's run statuses within ``rule.window`` (success_rate).
    """
    if endpoint.archived or endpoint.paused(now):
        return None
    if rule.kind is RuleKind.CONSECUTIVE_FAILURES:
        return _failing(rule, endpoint, incident_open)
    if rule.kind is RuleKind.SUCCESS_RATE:
        return _low_rate(rule, endpoint, recent)
    if rule.kind is RuleKind.NO_RUN:
        return _overdue(rule, endpoint, now)
    return None


def _failing(rule: AlertRule, endpoint: Endpoint, incident_open: bool) -> Breach | None:
    needed = 1 if incident_open else rule.failures
    if endpoint.failure_count < needed:
        return None
    return Breach(
        f"{endpoint.name} is failing",
        f"{endpoint.failure_count} failures in a row (last: {endpoint.last_status}).",
    )


def _low_rate(rule: AlertRule, endpoint: Endpoint, recent: tuple[RunStatus, ...]) -> Breach | None:
    if not recent:
        return None
    rate = sum(s.ok for s in recent) / len(recent)
    if rate >= rule.min_success_rate:
        return None
    hours = rule.window.total_seconds() / 3600
    return Breach(
        f"{endpoint.name} success rate is low",
        f"{rate:.0%} of {len(recent)} runs succeeded in the last {hours:g} h "
        f"(threshold {rule.min_success_rate:.0%}).",
    )


def _overdue(rule: AlertRule, endpoint: Endpoint, now: datetime) -> Breach | None:
    due = endpoint.next_run_at
    if due is None or now - due <= rule.late_after:
        return None
    late = int((now - due).total_seconds())
    return Breach(
        f"{endpoint.name} has not run",
        f"Its run planned for {due.isoformat()} has not happened: {late} s late "
        "(a missed or stuck schedule).",
    )


RETRY_DELAYS = (timedelta(seconds=1), timedelta(seconds=4), timedelta(seconds=15))
"""Waits between a delivery's attempts: four attempts in about 20 s."""
