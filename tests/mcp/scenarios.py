"""Scripts run through an MCP client on every transport: the flash-sale setup of the
seeds, and one session that calls every tool of the registry once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mcp.client.client import Client
from mcp_kit import ok


@dataclass
class Backstage:
    """What a script cannot do through tools: things the scheduler and the planner do."""

    make_run: Callable[[str], Awaitable[str]]
    """Gets one recorded run of the endpoint with this id; returns the run's id."""
    make_proposal: Callable[[str], Awaitable[str]]
    """Gets one pending planner proposal for the endpoint; returns its id."""
    make_incident: Callable[[str], Awaitable[str]]
    """Opens one alert incident about the endpoint (as the evaluator would); its id."""


# The seed's flash-sale job: 10 endpoints in 4 tiers. (name, tier, interval, cooldown);
# no interval: on demand (the recovery and alert tiers run only when asked).
FLASH_SALE: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("traffic_analyzer", "health", 60, None),
    ("order_processing_health", "health", 60, None),
    ("inventory_sync_check", "health", 120, None),
    ("slow_page_analyzer", "investigation", 300, None),
    ("database_query_trace", "investigation", 300, None),
    ("checkout_funnel_breakdown", "investigation", 600, None),
    ("cache_warm_up", "recovery", None, 600),
    ("scale_checkout_workers", "recovery", None, 1200),
    ("slack_ops_alert", "alert", None, 600),
    ("pagerduty_escalation", "alert", None, 3600),
)


@dataclass
class FlashSale:
    job_id: str
    endpoints: dict[str, str] = field(default_factory=dict)
    """Endpoint ids by name."""


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def set_up_flash_sale(client: Client, base_url: str, now: datetime) -> FlashSale:
    """Create the job, its 10 endpoints and pause the investigation tier, by tools only."""
    job = {
        "name": "Black Friday Flash Sale",
        "description": "Health, investigation, recovery and alert tiers.",
        "tags": ["flash-sale"],
        "reason": "flash sale starts tonight",
    }
    sale = FlashSale(ok(await client.call_tool("create_job", job))["id"])
    for name, tier, interval, cooldown in FLASH_SALE:
        endpoint = {
            "job_id": sale.job_id,
            "name": name,
            "tier": tier,
            "request": {"method": "POST", "url": f"{base_url}/{name}"},
            "baseline": None if interval is None else {"interval_seconds": interval},
            "min_interval_seconds": cooldown,
            "reason": f"{tier} tier of the flash sale",
        }
        sale.endpoints[name] = ok(await client.call_tool("add_endpoint", endpoint))["id"]
    pause = {"until": rfc3339(now + timedelta(days=7)), "reason": "only when health degrades"}
    for name, tier, _, _ in FLASH_SALE:
        if tier == "investigation":
            arguments = {"endpoint_id": sale.endpoints[name], **pause}
            ok(await client.call_tool("pause_or_resume_endpoint", arguments))
    return sale


Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


async def exercise_every_tool(
    client: Client, base_url: str, backstage: Backstage, now: datetime
) -> dict[str, dict[str, Any]]:
    """Call every tool once on a fresh job; the structured results by tool name."""
    seen: dict[str, dict[str, Any]] = {}

    async def call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        seen[name] = ok(await client.call_tool(name, arguments))
        return seen[name]

    await call("whoami", {})
    await call("describe_service_catalog", {})
    job_ref, ep_ref = await _build(call, base_url)
    later = rfc3339(now + timedelta(hours=1))
    await _steer(call, ep_ref, later)
    run_id = await backstage.make_run(ep_ref["endpoint_id"])
    await _read_history(call, ep_ref, run_id)
    await _steer_the_planner(call, ep_ref, await backstage.make_proposal(ep_ref["endpoint_id"]))
    await _as_code(call)
    await _alerts(call, ep_ref, base_url, await backstage.make_incident(ep_ref["endpoint_id"]))
    key = await call("create_api_key", {"name": "reader", "scopes": ["runs:read"]})
    await call("list_api_keys", {})
    await call("list_workers", {})
    await call("set_retention_policy", {"runs_per_endpoint": 1000, "audit_days": 365})
    await call("get_retention_policy", {})
    await call("revoke_api_key", {"key_id": key["key"]["id"], "reason": "exercise done"})
    await call("pause_job", {**job_ref, "until": later})
    await call("resume_job", job_ref)
    await call("delete_endpoint", ep_ref)
    await call("archive_job", {**job_ref, "reason": "exercise done"})
    return seen


async def _build(call: Call, base_url: str) -> tuple[dict[str, str], dict[str, str]]:
    job = await call("create_job", {"name": "every-tool", "reason": "exercise"})
    job_ref = {"job_id": job["id"]}
    await call("get_job", job_ref)
    await call("list_jobs", {"limit": 10})
    await call("update_job", {**job_ref, "description": "every tool once"})
    request = {"url": f"{base_url}/health"}
    endpoint = {**job_ref, "name": "health", "request": request}
    ep = await call("add_endpoint", {**endpoint, "baseline": {"interval_seconds": 300}})
    ep_ref = {"endpoint_id": ep["id"]}
    await call("get_endpoint", ep_ref)
    await call("list_endpoints", job_ref)
    await call("update_endpoint", {**ep_ref, "min_interval_seconds": 1})
    await call("test_endpoint", ep_ref)
    return job_ref, ep_ref


async def _steer(call: Call, ep_ref: dict[str, str], later: str) -> None:
    await call("apply_interval_hint", {**ep_ref, "interval_seconds": 30, "ttl_seconds": 600})
    await call("pause_or_resume_endpoint", {**ep_ref, "until": later, "reason": "hold"})
    await call("pause_or_resume_endpoint", {**ep_ref, "reason": "go"})
    reminder = {**ep_ref, "delay_seconds": 3600, "reason": "remind"}
    queued = await call("schedule_one_shot_run", reminder)
    await call("cancel_one_shot", {**ep_ref, "one_shot_id": queued["one_shot_id"]})
    await call("clear_adaptive_hints", ep_ref)
    await call("reset_failure_count", ep_ref)
    await call("schedule_one_shot_run", {**ep_ref, "delay_seconds": 0, "reason": "run now"})
    await call("trigger_run", {**ep_ref, "reason": "run now"})
    await call("explain_schedule", {**ep_ref, "preview": 3})


async def _read_history(call: Call, ep_ref: dict[str, str], run_id: str) -> None:
    runs = await call("list_runs", {**ep_ref, "limit": 5})
    assert run_id in [r["id"] for r in runs["items"]]
    await call("get_run_details", {"run_id": run_id})
    await call("summarize_endpoint_health", {**ep_ref, "window_seconds": 86_400})
    await call("list_audit_events", {"limit": 20})
    export = await call("export_runs", {**ep_ref, "format": "jsonl"})
    assert run_id in [r["id"] for r in export["items"]]
    await call("stream_run_events", {**ep_ref, "max_seconds": 1})


async def _as_code(call: Call) -> None:
    await call("get_manifest_schema", {})
    exported = await call("export_manifest", {"jobs": ["every-tool"]})
    applied = await call("apply_manifest", {"manifest": exported, "dry_run": True})
    assert applied["changes"] == [], applied


async def _alerts(call: Call, ep_ref: dict[str, str], base_url: str, incident_id: str) -> None:
    hook = {"name": "every-tool-hook", "kind": "webhook", "url": f"{base_url}/hook"}
    channel = await call("create_channel", hook)
    await call("list_channels", {})
    sent = await call("send_test_notification", {"channel_id": channel["id"]})
    assert sent["status"] == "sent", sent
    rule = {"name": "every-tool-down", "kind": "consecutive_failures", **ep_ref}
    created = await call("create_alert_rule", {**rule, "channel_ids": [channel["id"]]})
    await call("list_alert_rules", {})
    # Not only open ones: the alert loop of ``cadenza serve`` may have resolved it.
    listed = await call("list_incidents", {})
    assert incident_id in [i["id"] for i in listed["items"]]
    await call("get_incident", {"incident_id": incident_id})
    await call("delete_alert_rule", {"rule_id": created["id"]})
    await call("delete_channel", {"channel_id": channel["id"]})


async def _steer_the_planner(call: Call, ep_ref: dict[str, str], proposal_id: str) -> None:
    await call("set_endpoint_planner", {**ep_ref, "kind": "rules", "approval": True})
    await call("get_endpoint_planner", ep_ref)
    pending = await call("list_proposals", {**ep_ref, "status": "pending"})
    assert proposal_id in [p["id"] for p in pending["items"]]
    decided = await call("decide_proposal", {"proposal_id": proposal_id, "decision": "approve"})
    assert decided["status"] == "applied"
    await call("list_planner_sessions", ep_ref)
