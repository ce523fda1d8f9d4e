"""Channels and alert rules in a manifest: checked with everything else, planned and
written after the jobs and endpoints (a rule names their ids), exported back.

Channels are matched by name, like rules (a rule's name is unique in the tenant).
A rule on a job watches that job, or the endpoint it names; a top-level rule the
whole tenant. A rule's ``channels`` are channel names, from the manifest or already
stored. A channel's secret (SMTP password, Slack URL) is exported as a ``${NAME}``
reference and compared in clear, so applying the same values changes nothing.
``prune`` also deletes the channels and rules the manifest does not name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cadenza.actions.alerts import (
    ChannelOut,
    RuleOut,
    channel_of,
    check_channel_url,
    notify_store,
    rule_of,
)
from cadenza.actions.base import Context, audit_event
from cadenza.actions.manifest_models import REFERENCE, AlertSpec, ChannelSpec, Manifest
from cadenza.actions.manifest_plan import ROOT, Step, json_changes, located
from cadenza.domain import errors
from cadenza.domain.alerts import AlertRule, Channel, ChannelKind
from cadenza.domain.model import Endpoint, Job

AUDIT_ACTION = "apply_manifest"
EndpointIds = dict[tuple[str, str], tuple[str | None, bool]]


def _rules(manifest: Manifest) -> list[tuple[str, str | None, AlertSpec]]:
    """Every rule with its path and its job's name (``None`` at the top level)."""
    found: list[tuple[str, str | None, AlertSpec]] = [
        (f"{ROOT}.alerts.{i}", None, spec) for i, spec in enumerate(manifest.alerts)
    ]
    for j, job in enumerate(manifest.jobs):
        found += [(f"{ROOT}.jobs.{j}.alerts.{i}", job.name, a) for i, a in enumerate(job.alerts)]
    return found


def alert_problems(manifest: Manifest, tenant_id: str, now: datetime) -> list[tuple[str, str]]:
    """What is wrong with the manifest's channels and rules, by path, before any read."""
    problems: list[tuple[str, str]] = []
    for i, wanted in enumerate(manifest.channels):
        path = f"{ROOT}.channels.{i}"
        for where, value in (("url", wanted.url), ("password", wanted.password)):
            if REFERENCE.search(value):
                problems.append((f"{path}.{where}", "A ${NAME} reference was not filled in."))
        try:
            channel_of(wanted, tenant_id, now)
        except errors.ValidationError as exc:
            problems += located(path, exc)
    problems += _twice([(f"{ROOT}.channels.{i}", c.name) for i, c in enumerate(manifest.channels)])
    endpoints = {job.name: {e.name for e in job.endpoints} for job in manifest.jobs}
    for path, job, spec in _rules(manifest):
        if spec.endpoint is not None and (job is None or spec.endpoint not in endpoints[job]):
            why = "Name an endpoint of this job." if job else "A top-level rule has no endpoint."
            problems.append((f"{path}.endpoint", why))
        try:
            rule_of(spec, tenant_id, spec.name, now, scope=(job and "job", None))
        except errors.ValidationError as exc:
            problems += located(path, exc)
    problems += _twice([(path, spec.name) for path, _, spec in _rules(manifest)])
    return problems


def _twice(named: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    found = []
    for path, name in named:
        if name in seen:
            found.append((f"{path}.name", f"Another item of the manifest is named {name!r}."))
        seen.add(name)
    return found


def uses_alerts(manifest: Manifest) -> bool:
    return bool(manifest.channels or manifest.alerts or any(j.alerts for j in manifest.jobs))


@dataclass(slots=True)
class CurrentAlerts:
    channels: dict[str, Channel]
    rules: dict[str, AlertRule]


async def current_alerts(ctx: Context, manifest: Manifest, *, prune: bool) -> CurrentAlerts:
    """The tenant's channels and rules by name; refuses (before anything is written)
    a channel URL the server would not send to and a rule naming an unknown channel."""
    if ctx.services.notify is None:
        if uses_alerts(manifest):
            raise errors.Conflict("Alerts need a SQL store (SQLite or PostgreSQL).")
        return CurrentAlerts({}, {})
    store = notify_store(ctx)
    current = CurrentAlerts(
        {c.name: c for c in await store.list_channels(ctx.tenant_id)},
        {r.name: r for r in await store.list_rules(ctx.tenant_id)},
    )
    problems: list[tuple[str, str]] = []
    for i, wanted in enumerate(manifest.channels):
        try:
            check_channel_url(ctx, wanted)
        except errors.ValidationError as exc:
            problems += located(f"{ROOT}.channels.{i}", exc)
    known = {c.name for c in manifest.channels} | set(current.channels)
    for path, _, spec in _rules(manifest):
        problems += [
            (f"{path}.channels.{i}", f"No channel named {name!r}.")
            for i, name in enumerate(spec.channels)
            if name not in known
        ]
    if problems:
        raise errors.InvalidInput(problems)
    return current


def plan_alerts(
    ctx: Context,
    manifest: Manifest,
    current: CurrentAlerts,
    job_ids: dict[str, str | None],
    endpoint_ids: EndpointIds,
    *,
    prune: bool,
) -> list[Step]:
    """Channel steps first, then rule steps: a rule may name a channel made here."""
    now = ctx.now()
    steps: list[Step] = []
    channel_ids = {name: c.id for name, c in current.channels.items()}
    for i, wanted in enumerate(manifest.channels):
        found = current.channels.get(wanted.name)
        desired = channel_of(wanted, ctx.tenant_id, now, found.id if found else "")
        channel_ids[wanted.name] = desired.id
        path = f"{ROOT}.channels.{i}"
        steps += _compare("channel", "", path, found, desired, channel_wire)
    for path, job, spec in _rules(manifest):
        found_rule = current.rules.get(spec.name)
        endpoint_id = None
        if job is not None and spec.endpoint is not None:
            endpoint_id = endpoint_ids.get((job, spec.endpoint), (None, True))[0] or ""
        rule = rule_of(
            spec,
            ctx.tenant_id,
            spec.name,
            found_rule.created_at if found_rule else now,
            rule_id=found_rule.id if found_rule else "",
            scope=(None if job is None else job_ids.get(job) or "", endpoint_id),
            channel_ids=tuple(channel_ids[name] for name in spec.channels),
        )
        steps += _compare("alert", job or "", path, found_rule, rule, rule_wire)
    if prune:
        named = {spec.name for spec in manifest.channels}
        steps += [_gone("channel", c) for n, c in current.channels.items() if n not in named]
        rules = {spec.name for _, _, spec in _rules(manifest)}
        steps += [_gone("alert", r) for n, r in current.rules.items() if n not in rules]
    return steps


def _compare(kind: Any, job: str, path: str, found: Any, desired: Any, wire: Any) -> list[Step]:
    if found is None:
        return [Step("create", kind, job, desired.name, path, desired)]
    desired = replace(desired, created_at=found.created_at)
    changes = json_changes(wire(found), wire(desired))
    if getattr(found, "secret", "") != getattr(desired, "secret", ""):
        changes.append(("secret", "(a secret value)", "(another secret value)"))
    return [Step("update", kind, job, desired.name, path, desired, changes)] if changes else []


def _gone(kind: Any, item: Channel | AlertRule) -> Step:
    return Step("archive", kind, "", item.name, None, item)


def channel_wire(channel: Channel) -> dict[str, Any]:
    return ChannelOut.of(channel).model_dump(mode="json", exclude={"id", "created_at"})


def rule_wire(rule: AlertRule) -> dict[str, Any]:
    return RuleOut.of(rule).model_dump(mode="json", exclude={"id", "created_at"})


async def write_alerts(ctx: Context, steps: list[Step], reason: str) -> None:
    """Each step to the notification store, then their audit events."""
    if not steps:
        return
    store = notify_store(ctx)
    for step in steps:
        target = step.target
        step.id = target.id
        if step.kind == "channel":
            if step.op == "create":
                await store.insert_channel(target)
            elif step.op == "update":
                await store.replace_channel(target)
            else:
                await store.delete_channel(ctx.tenant_id, target.id)
        elif step.op == "create":
            await store.insert_rule(target)
        elif step.op == "update":
            await store.replace_rule(target)
        else:
            await store.delete_rule(ctx.tenant_id, target.id)
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        await tx.insert_audits([_event(ctx, step, now, reason) for step in steps])


def _event(ctx: Context, step: Step, now: datetime, reason: str) -> Any:
    assert step.id is not None
    changes: dict[str, Any] = {"op": step.op, "name": step.endpoint}
    if step.changes:
        changes["fields"] = [f for f, _, _ in step.changes]
    kind = "channel" if step.kind == "channel" else "alert_rule"
    return audit_event(ctx, now, AUDIT_ACTION, (kind, step.id), reason, changes)


# -- export ------------------------------------------------------------------------


@dataclass(slots=True)
class ExportedAlerts:
    channels: list[ChannelSpec]
    tenant_rules: list[AlertSpec]
    by_job: dict[str, list[AlertSpec]]


async def export_alerts(ctx: Context, found: list[tuple[Job, list[Endpoint]]]) -> ExportedAlerts:
    """The tenant's channels, its tenant-wide rules and the rules of the jobs exported."""
    store = ctx.services.notify
    if store is None:
        return ExportedAlerts([], [], {})
    channels = await store.list_channels(ctx.tenant_id)
    names = {c.id: c.name for c in channels}
    endpoint_names = {e.id: e.name for _, endpoints in found for e in endpoints}
    exported = ExportedAlerts(
        [_channel_spec(c) for c in sorted(channels, key=lambda c: c.name)],
        [],
        {job.id: [] for job, _ in found},
    )
    for rule in sorted(await store.list_rules(ctx.tenant_id), key=lambda r: r.name):
        spec = _alert_spec(rule, names, endpoint_names)
        if rule.job_id is None:
            exported.tenant_rules.append(spec)
        elif rule.job_id in exported.by_job:
            exported.by_job[rule.job_id].append(spec)
    return exported


def _channel_spec(channel: Channel) -> ChannelSpec:
    reference = "${" + secret_reference(channel.name) + "}"
    slack = channel.kind is ChannelKind.SLACK
    return ChannelSpec(
        name=channel.name,
        kind=channel.kind,
        url=reference if slack else channel.url,
        smtp_host=channel.smtp_host,
        smtp_port=channel.smtp_port,
        security=channel.security,
        username=channel.username,
        password=reference if channel.secret and not slack else "",
        sender=channel.sender,
        recipients=list(channel.recipients),
    )


def _alert_spec(rule: AlertRule, channels: dict[str, str], endpoints: dict[str, str]) -> AlertSpec:
    wire = rule_wire(rule)
    for field in ("job_id", "endpoint_id", "channel_ids"):
        del wire[field]
    return AlertSpec.model_validate(
        {
            **wire,
            "name": rule.name,
            "endpoint": endpoints.get(rule.endpoint_id or ""),
            "channels": [channels[c] for c in rule.channel_ids if c in channels],
        }
    )


def secret_reference(channel: str) -> str:
    """The environment variable an export names for a channel's secret:
    ``CHANNEL_OPS_SECRET`` for channel ops."""
    return re.sub(r"[^A-Za-z0-9]+", "_", f"CHANNEL_{channel}_SECRET").strip("_").upper()
