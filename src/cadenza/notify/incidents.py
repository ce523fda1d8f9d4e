"""``AlertEvaluator``: judges every enabled rule, opens, reminds and resolves incidents.

One ``tick(now)`` reads each rule's subjects and their breaches
(``cadenza.domain.alerts``; the planner's queue; ``cadenza.notify.watchdog``), then
settles them against the open incidents: a new breach opens an incident and sends
one notice to each of the rule's channels; a breach still open may send a reminder
after ``renotify_every``; an open incident whose breach is gone resolves with one
notice. Opening is a compare-and-set in the store, so two evaluators in two
processes open an incident once.

Incidents of a rule deleted or switched off resolve quietly. Reads are bounded: at
most ``MAX_SUBJECTS`` endpoints per rule and ``RATE_SAMPLE`` runs per endpoint for a
success rate.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from cadenza.domain import errors
from cadenza.domain.alerts import (
    ENDPOINT_KINDS,
    AlertRule,
    Breach,
    Channel,
    Incident,
    Notice,
    NoticeKind,
    RuleKind,
    endpoint_breach,
)
from cadenza.domain.model import Endpoint, RunStatus
from cadenza.domain.planning import ProposalStatus
from cadenza.ids import new_id
from cadenza.notify.watchdog import WatchdogOptions, watchdog_breaches
from cadenza.ports import (
    JobStatus,
    NoticeSender,
    NotifyStore,
    PlannerStore,
    RunFilter,
    Store,
    Tx,
)

MAX_SUBJECTS = 1000
RATE_SAMPLE = 500
_PAGE = 200

Key = tuple[str, str]


class AlertEvaluator:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        notify: NotifyStore,
        notifier: NoticeSender,
        *,
        planner: PlannerStore | None = None,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._notify = notify
        self._planner = planner

    async def tick(self, now: datetime) -> None:
        rules = [r for r in await self._notify.list_rules(None) if r.enabled]
        opened = {(i.rule_id, i.subject): i for i in await self._notify.open_incidents(None)}
        service: dict[timedelta, dict[str, Breach]] = {}
        for rule in rules:
            if rule.kind is RuleKind.WATCHDOG:
                if rule.late_after not in service:
                    options = WatchdogOptions(rule.late_after, rule.late_after)
                    service[rule.late_after] = await watchdog_breaches(self._store, now, options)
                breaches = service[rule.late_after]
            else:
                try:
                    breaches = await self._breaches(rule, now, opened)
                except errors.NotFound:
                    breaches = {}  # its endpoint or job is gone: nothing left to watch
            await self._settle(rule, breaches, opened, now)
        await self._close_orphans(rules, opened, now)

    async def _close_orphans(
        self, rules: list[AlertRule], opened: dict[Key, Incident], now: datetime
    ) -> None:
        """Incidents of a rule deleted or switched off resolve without a notice: nobody
        watches their condition any more."""
        watched = {rule.id for rule in rules}
        for (rule_id, _), incident in opened.items():
            if rule_id not in watched:
                await self._notify.update_incident(replace(incident, resolved_at=now))

    async def _breaches(
        self, rule: AlertRule, now: datetime, opened: dict[Key, Incident]
    ) -> dict[str, Breach]:
        if rule.kind is RuleKind.PLANNER_ESCALATION:
            return await self._escalations(rule, now)
        if rule.kind not in ENDPOINT_KINDS:
            return {}
        found: dict[str, Breach] = {}
        for endpoint in await self._endpoints(rule, now):
            recent = await self._recent(rule, endpoint, now)
            is_open = (rule.id, endpoint.id) in opened
            breach = endpoint_breach(rule, endpoint, now, incident_open=is_open, recent=recent)
            if breach is not None:
                found[endpoint.id] = breach
        return found

    async def _endpoints(self, rule: AlertRule, now: datetime) -> list[Endpoint]:
        async with self._store.transaction(readonly=True) as tx:
            if rule.endpoint_id is not None:
                return [await tx.get_endpoint(rule.tenant_id, rule.endpoint_id)]
            job_ids = [rule.job_id] if rule.job_id else await self._job_ids(rule, tx, now)
            found: list[Endpoint] = []
            for job_id in job_ids:
                cursor: str | None = None
                while len(found) < MAX_SUBJECTS:
                    page = await tx.list_endpoints(
                        rule.tenant_id, job_id, include_archived=False, cursor=cursor, limit=_PAGE
                    )
                    found.extend(page.items)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
            return found[:MAX_SUBJECTS]

    async def _job_ids(self, rule: AlertRule, tx: Tx, now: datetime) -> list[str]:
        """The tenant's active jobs (at most ``MAX_SUBJECTS``)."""
        ids: list[str] = []
        cursor: str | None = None
        while len(ids) < MAX_SUBJECTS:
            page = await tx.list_jobs(
                rule.tenant_id, status=JobStatus.ACTIVE, now=now, cursor=cursor, limit=_PAGE
            )
            ids.extend(job.id for job in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        return ids

    async def _recent(
        self, rule: AlertRule, endpoint: Endpoint, now: datetime
    ) -> tuple[RunStatus, ...]:
        if rule.kind is not RuleKind.SUCCESS_RATE:
            return ()
        flt = RunFilter(endpoint_id=endpoint.id, since=now - rule.window)
        async with self._store.transaction(readonly=True) as tx:
            page = await tx.list_runs(rule.tenant_id, flt, cursor=None, limit=RATE_SAMPLE)
        return tuple(run.status for run in page.items)

    async def _escalations(self, rule: AlertRule, now: datetime) -> dict[str, Breach]:
        """Endpoints with planner changes waiting for a person's approval."""
        if self._planner is None:
            return {}
        page = await self._planner.list_proposals(
            rule.tenant_id,
            status=ProposalStatus.PENDING,
            endpoint_id=rule.endpoint_id,
            cursor=None,
            limit=_PAGE,
        )
        waiting: dict[str, int] = {}
        for proposal in page.items:
            waiting[proposal.endpoint_id] = waiting.get(proposal.endpoint_id, 0) + 1
        if rule.job_id is not None:
            in_job = {e.id for e in await self._endpoints(rule, now)}
            waiting = {k: v for k, v in waiting.items() if k in in_job}
        return {
            endpoint_id: Breach(
                "The planner needs a decision",
                f"{count} planner change(s) for endpoint {endpoint_id} await approval.",
            )
            for endpoint_id, count in waiting.items()
        }

    async def _settle(
        self,
        rule: AlertRule,
        breaches: dict[str, Breach],
        opened: dict[Key, Incident],
        now: datetime,
    ) -> None:
        for subject, breach in breaches.items():
            incident = opened.get((rule.id, subject))
            if incident is None:
                await self._open(rule, subject, breach, now)
            elif incident.reminder_due(rule, now):
                reminded = replace(
                    incident,
                    detail=breach.detail,
                    notified_at=now,
                    notifications=incident.notifications + 1,
                )
                await self._notify.update_incident(reminded)
                await self.announce(rule, reminded, NoticeKind.REMINDER, now)
        for (rule_id, subject), incident in opened.items():
            if rule_id == rule.id and subject not in breaches:
                resolved = replace(incident, resolved_at=now, notified_at=now)
                await self._notify.update_incident(resolved)
                await self.announce(rule, resolved, NoticeKind.RESOLVED, now)

    async def _open(self, rule: AlertRule, subject: str, breach: Breach, now: datetime) -> None:
        incident = Incident(
            id=new_id("inc", now),
            tenant_id=rule.tenant_id,
            rule_id=rule.id,
            subject=subject,
            title=breach.title,
            detail=breach.detail,
            opened_at=now,
            notified_at=now,
        )
        if await self._notify.open_incident(incident) is not None:
            await self.announce(rule, incident, NoticeKind.OPENED, now)

    async def announce(
        self, rule: AlertRule, incident: Incident, kind: NoticeKind, now: datetime
    ) -> None:
        """Send the incident's notice to each of the rule's channels at once."""
        notice = Notice(
            kind=kind,
            title=incident.title,
            detail=incident.detail if kind is not NoticeKind.RESOLVED else "Back to normal.",
            at=now,
            tenant_id=incident.tenant_id,
            incident_id=incident.id,
            rule=rule.name,
            subject=incident.subject,
        )
        channels = await self._channels(rule)
        await asyncio.gather(*(self._notifier.deliver(notice, c) for c in channels))

    async def _channels(self, rule: AlertRule) -> list[Channel]:
        channels = await self._notify.list_channels(rule.tenant_id)
        if not rule.channel_ids:
            return channels
        return [c for c in channels if c.id in rule.channel_ids]
