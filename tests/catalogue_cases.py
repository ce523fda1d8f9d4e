"""Test tables shared by every surface's tests (REST, MCP in memory, the TypeScript SDK).

Valid input comes from the actions themselves: every ``Example`` of every action is
called on every surface, with the placeholder ids replaced by real ones. Invalid
input is tabled here once: one bad argument set per action with the field the error
must name, and the cases that strict validation refuses (a boolean is not an
integer, a number is not a time, ``0`` is not ``false``).
"""

from __future__ import annotations

from typing import Any

from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import Services
from cadenza.actions.wire import EXAMPLE_IDS
from cadenza.domain.alerts import AlertRule, Channel, ChannelKind, Incident, RuleKind
from cadenza.ids import new_id
from cadenza.notify.delivery import Notifier
from cadenza.ports import Clock, NotifyStore
from cadenza.testing.dispatch import FakeDispatcher
from cadenza.testing.notify_store import MemoryNotifyStore, RecordingMailer

LONG_ID = "x" * 65
LONG_REASON = "r" * 1001

MISSING = {
    "job_id": "job_01kjq6psg0hsnnqppbnfezczwm",
    "endpoint_id": "ep_01kjq6psg0bz0nmmxd7gzhz90c",
    "run_id": "run_01kjq6psg0bz0nmmxd7gzhz90c",
    "key_id": "key_01kjq6psg03j132y95g9pxj08k",
    "proposal_id": "prp_01kjq6psg03j132y95g9pxj08k",
    "channel_id": "chn_01kjq6psg03j132y95g9pxj08k",
    "rule_id": "alr_01kjq6psg03j132y95g9pxj08k",
    "incident_id": "inc_01kjq6psg03j132y95g9pxj08k",
    "one_shot_id": "osh_01kjq6psg03j132y95g9pxj08k",
}
"""Well-formed ids that exist nowhere."""

NAMES = [a.name for a in REGISTRY]
WITH_IDS = [a.name for a in REGISTRY if a.path_params]
SCOPED = [a.name for a in REGISTRY if a.scopes]
EXAMPLES = [(a.name, i) for a in REGISTRY for i in range(len(a.examples))]
"""Every (action, example index) of the registry."""

_BAD_BASELINE = {"name": "x", "request": {"url": "https://example.com/"}}

BAD: dict[str, tuple[dict[str, Any], str]] = {
    "create_job": ({"name": ""}, "name"),
    "get_job": ({"job_id": LONG_ID}, "job_id"),
    "list_jobs": ({"limit": 0}, "limit"),
    "update_job": ({"name": ""}, "name"),
    "archive_job": ({"reason": LONG_REASON}, "reason"),
    "pause_job": ({"until": "tomorrow"}, "until"),
    "resume_job": ({"reason": LONG_REASON}, "reason"),
    "add_endpoint": (
        {**_BAD_BASELINE, "baseline": {"interval_seconds": 0.5}},
        "baseline.interval_seconds",
    ),
    "get_endpoint": ({"endpoint_id": LONG_ID}, "endpoint_id"),
    "list_endpoints": ({"limit": 100_000}, "limit"),
    "update_endpoint": ({"jitter_seconds": -1}, "jitter_seconds"),
    "delete_endpoint": ({"reason": LONG_REASON}, "reason"),
    "test_endpoint": ({"reason": LONG_REASON}, "reason"),
    "apply_interval_hint": ({"interval_seconds": 0}, "interval_seconds"),
    "schedule_one_shot_run": ({"delay_seconds": -1}, "delay_seconds"),
    "trigger_run": ({"reason": LONG_REASON}, "reason"),
    "cancel_one_shot": ({"one_shot_id": LONG_ID}, "one_shot_id"),
    "pause_or_resume_endpoint": ({"until": "soon"}, "until"),
    "clear_adaptive_hints": ({"reason": LONG_REASON}, "reason"),
    "reset_failure_count": ({"reason": LONG_REASON}, "reason"),
    "explain_schedule": ({"preview": 51}, "preview"),
    "list_runs": ({"status": "exploded"}, "status"),
    "get_run_details": ({"run_id": LONG_ID}, "run_id"),
    "summarize_endpoint_health": ({"window_seconds": 1}, "window_seconds"),
    "list_audit_events": ({"since": "yesterday"}, "since"),
    "export_runs": ({"format": "xml"}, "format"),
    "stream_run_events": ({"max_seconds": 0}, "max_seconds"),
    "create_api_key": ({"name": "k", "scopes": []}, "scopes"),
    "list_api_keys": ({"limit": 0}, "limit"),
    "revoke_api_key": ({"key_id": LONG_ID}, "key_id"),
    "describe_service_catalog": ({"surprise": 1}, "surprise"),
    "whoami": ({"surprise": 1}, "surprise"),
    "list_proposals": ({"status": "maybe"}, "status"),
    "decide_proposal": ({"decision": "perhaps"}, "decision"),
    "list_planner_sessions": ({"limit": 0}, "limit"),
    "get_endpoint_planner": ({"endpoint_id": LONG_ID}, "endpoint_id"),
    "set_endpoint_planner": ({"kind": "oracle"}, "kind"),
    "apply_manifest": (
        {"manifest": {"jobs": [{"name": "coded", "endpoints": [{"name": "e"}]}]}},
        "manifest.jobs.0.endpoints.0.request",
    ),
    "export_manifest": ({"jobs": [""]}, "jobs.0"),
    "get_manifest_schema": ({"surprise": 1}, "surprise"),
    "list_workers": ({"surprise": 1}, "surprise"),
    "get_retention_policy": ({"surprise": 1}, "surprise"),
    "set_retention_policy": ({"run_days": 0}, "run_days"),
    "create_channel": ({"name": "c", "kind": "pager"}, "kind"),
    "list_channels": ({"surprise": 1}, "surprise"),
    "delete_channel": ({"channel_id": LONG_ID}, "channel_id"),
    "send_test_notification": ({"reason": LONG_REASON}, "reason"),
    "create_alert_rule": ({"name": "r", "kind": "no_run", "failures": 0}, "failures"),
    "list_alert_rules": ({"surprise": 1}, "surprise"),
    "delete_alert_rule": ({"rule_id": LONG_ID}, "rule_id"),
    "list_incidents": ({"limit": 0}, "limit"),
    "get_incident": ({"incident_id": LONG_ID}, "incident_id"),
}
"""One invalid argument set per action (ids given here win over real ones) and the
field the error must name."""

STRICT: dict[str, tuple[str, dict[str, Any], str]] = {
    "a boolean is not an integer": ("list_jobs", {"limit": True}, "limit"),
    "a fraction is not an integer": ("explain_schedule", {"preview": 2.5}, "preview"),
    "a number is not a time": ("pause_job", {"until": 1_893_456_000}, "until"),
    "0 is not false": ("list_endpoints", {"include_archived": 0}, "include_archived"),
    "1 is not true": ("create_job", {"name": "x", "planner_enabled": 1}, "planner_enabled"),
    "a string is not a number": (
        "apply_interval_hint",
        {"interval_seconds": "30"},
        "interval_seconds",
    ),
    "a boolean is not a number": (
        "summarize_endpoint_health",
        {"window_seconds": False},
        "window_seconds",
    ),
}
"""Inputs that only a lax parser would take: (action, arguments, field named)."""


def alert_services(clock: Clock, store: NotifyStore | None = None) -> dict[str, Any]:
    """``Services`` fields for alerts: a store (the memory fake by default) and a
    notifier over a fake dispatcher and mailer, so test notifications succeed."""
    notify = store or MemoryNotifyStore()
    return {
        "notify": notify,
        "notices": Notifier(notify, FakeDispatcher(clock), RecordingMailer(), clock),
    }


async def alert_ids(
    services: Services, tenant_id: str, url: str = "https://hooks.example.com/world"
) -> dict[str, str]:
    """A webhook channel (to ``url``), a rule and an open incident of the tenant, by
    id field."""
    store = services.notify
    assert store is not None
    now = services.clock.now()
    channel = Channel(
        new_id("chn", now),
        tenant_id,
        "world-hook",
        ChannelKind.WEBHOOK,
        now,
        url=url,
    )
    rule = AlertRule(new_id("alr", now), tenant_id, "world-rule", RuleKind.NO_RUN, now)
    incident = Incident(
        new_id("inc", now), tenant_id, rule.id, "ep_world", "late", "a test incident", now, now
    )
    await store.insert_channel(channel)
    await store.insert_rule(rule)
    await store.open_incident(incident)
    return {"channel_id": channel.id, "rule_id": rule.id, "incident_id": incident.id}


async def open_incident(services: Services, tenant_id: str, subject: str) -> str:
    """An open incident about ``subject`` (as the evaluator opens one); its id."""
    assert services.notify is not None
    now = services.clock.now()
    incident = Incident(
        new_id("inc", now), tenant_id, new_id("alr", now), subject, "down", "failing", now, now
    )
    await services.notify.open_incident(incident)
    return incident.id


LATER = {"delay_seconds": 3600, "reason": "look again in an hour"}
"""A one-shot an hour ahead: what every surface's world queues for ``one_shot_id``."""


def example_arguments(name: str, index: int, ids: dict[str, str]) -> dict[str, Any]:
    """The action's example ``index`` with its placeholder ids replaced by ``ids``."""
    arguments = dict(BY_NAME[name].examples[index].arguments)
    return {k: ids[k] if k in EXAMPLE_IDS and k in ids else v for k, v in arguments.items()}


def with_ids(name: str, ids: dict[str, str], arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` plus the ids the action's path needs; ids in ``arguments`` win."""
    return {**{p: ids[p] for p in BY_NAME[name].path_params}, **arguments}


def good_arguments(name: str, ids: dict[str, str]) -> dict[str, Any]:
    """The action's first example with real ids: a call that succeeds in a world
    holding a job, an endpoint with a run and a queued one-shot, a pending proposal
    and a spare key."""
    return with_ids(name, ids, example_arguments(name, 0, ids))
