"""Every command group of the real ``cadenza`` executable against a real ``cadenza
serve``, with ``--json`` output parsed (tables are for people)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest
from cli_kit import Tenant

pytestmark = pytest.mark.slow


def make_endpoint(tenant: Tenant, **options: str) -> tuple[str, str]:
    job = tenant.json("jobs", "create", "shop", "--tag", "web", "--reason", "cli test")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    url = tenant.server.target + "/flash-sale/ops/traffic"
    endpoint = tenant.json(
        "endpoints", "add", job["id"], "--name", "traffic", f"--url={url}", "--every=5m", *args
    )
    return job["id"], endpoint["id"]


def test_jobs_are_created_listed_changed_paused_resumed_and_archived(tenant: Tenant) -> None:
    created = tenant.json("jobs", "create", "nightly", "--tag", "a", "--tag", "b")
    assert created["tags"] == ["a", "b"]
    job = created["id"]
    assert [j["id"] for j in tenant.json("jobs", "list")["items"]] == [job]
    assert tenant.json("jobs", "get", job)["endpoint_count"] == 0
    renamed = tenant.json(
        "jobs", "update", job, "--description", "every night", "--no-planner-enabled"
    )
    assert (renamed["description"], renamed["planner_enabled"]) == ("every night", False)
    paused = tenant.json("jobs", "pause", job, "--until", "+2h", "--reason", "maintenance")
    assert paused["job"]["status"] == "paused"
    assert tenant.json("jobs", "resume", job)["job"]["status"] == "active"
    assert tenant.json("jobs", "archive", job)["job"]["status"] == "archived"
    assert tenant.json("jobs", "list", "--status", "archived")["items"][0]["id"] == job


def test_an_endpoint_is_added_with_flags_for_its_request_and_schedule(tenant: Tenant) -> None:
    job, endpoint = make_endpoint(
        tenant, secret_header="Authorization: Bearer s3cret", timeout="10s", min_interval="15s"
    )
    shown = tenant.json("endpoints", "get", endpoint)
    assert shown["baseline"]["interval_seconds"] == 300
    assert shown["min_interval_seconds"] == 15
    assert shown["request"]["timeout_seconds"] == 10
    assert shown["request"]["headers"] == [
        {"name": "Authorization", "value": "********", "secret": True}
    ]
    changed = tenant.json("endpoints", "update", endpoint, "--cron", "*/5 * * * *")
    assert changed["baseline"]["cron"] == "*/5 * * * *"
    listed = tenant.json("endpoints", "list", job)
    assert [e["id"] for e in listed["items"]] == [endpoint]
    tested = tenant.json("endpoints", "test", endpoint)
    assert (tested["success"], tested["http_status"]) == (True, 200)
    assert tenant.json("endpoints", "reset-failures", endpoint)["endpoint_id"] == endpoint
    assert tenant.json("endpoints", "health", endpoint, "--window", "1h")["runs"] == 0
    assert tenant.json("endpoints", "delete", endpoint)["archived_at"] is not None


def test_hints_pauses_and_the_explanation_steer_an_endpoint(tenant: Tenant) -> None:
    _, endpoint = make_endpoint(tenant)
    hinted = tenant.json("hint", "interval", endpoint, "30s", "--ttl", "20m", "--reason", "deploy")
    assert hinted["plan"]["source"] == "hint-interval"
    once = tenant.json("hint", "one-shot", endpoint, "--delay", "1m")
    assert once["plan"]["next_run_at"] is not None
    assert tenant.json("hint", "clear", endpoint)["plan"]["source"] == "baseline-interval"
    paused = tenant.json("pause", endpoint, "--until", "+10m", "--reason", "upstream down")
    assert paused["plan"]["source"] == "paused"
    explained = tenant.json("explain", endpoint, "--preview", "5")
    assert len(explained["preview"]) == 5
    assert explained["plan"]["explanation"][-1]["rule"] == "paused"
    assert tenant.json("resume", endpoint)["plan"]["source"] == "baseline-interval"


def test_runs_audit_and_events_are_read_and_exported(tenant: Tenant) -> None:
    _, endpoint = make_endpoint(tenant)
    tenant.json("hint", "one-shot", endpoint, "--reason", "now")
    runs = _until_a_run(tenant, endpoint)
    run = tenant.json("runs", "get", runs[0]["id"])
    assert run["endpoint_id"] == endpoint
    assert run["response"]["content_type"]
    exported = tenant.run("runs", "export", "--endpoint", endpoint, "--format", "jsonl")
    assert exported.code == 0, exported.stderr
    assert json.loads(exported.stdout.splitlines()[0])["id"] == runs[0]["id"]
    audit = tenant.json("audit", "list", "--target", endpoint)
    assert {e["action"] for e in audit["items"]} >= {"add_endpoint", "schedule_one_shot_run"}
    events = tenant.run("events", "watch", "--endpoint", endpoint, "--for", "2s", "--json")
    assert events.code == 0, events.stderr
    assert all(
        json.loads(line)["type"] in ("run", "schedule_change") for line in events.stdout.split()
    )
    every = tenant.json("runs", "list", "--endpoint", endpoint, "--limit", "1", "--all")
    assert every["next_cursor"] is None
    assert len(every["items"]) == len(runs)


def _until_a_run(tenant: Tenant, endpoint: str) -> list[dict[str, Any]]:
    """Waits (polling the API itself, not through the CLI) until the run is recorded."""
    headers = {"Authorization": f"Bearer {tenant.key}"}
    url = f"{tenant.server.url}/api/v1/runs"
    for _ in range(600):  # a hang guard: the one-shot runs within a second or two
        runs = httpx2.get(url, params={"endpoint_id": endpoint}, headers=headers).json()
        if runs["items"]:
            return list(runs["items"])
        time.sleep(0.1)
    raise AssertionError("the one-shot run never came")


def test_keys_are_created_listed_and_revoked(tenant: Tenant) -> None:
    created = tenant.json(
        "keys", "create", "--name", "ops-agent", "--scope", "runs:read", "--kind", "agent"
    )
    assert created["secret"].startswith("cdz_")
    assert created["key"]["kind"] == "agent"
    assert created["key"]["scopes"] == ["runs:read"]
    key_id = created["key"]["id"]
    assert key_id in [k["id"] for k in tenant.json("keys", "list")["items"]]
    assert tenant.json("keys", "revoke", key_id, "--reason", "done")["revoked_at"] is not None
    narrow = tenant.run("whoami", "--json", CADENZA_API_KEY=created["secret"])
    assert narrow.code == 4


def test_the_catalogue_identity_and_planner_commands_answer(tenant: Tenant) -> None:
    names = {a["name"] for a in tenant.json("catalog")["actions"]}
    assert {"apply_manifest", "list_runs"} <= names
    assert tenant.json("whoami")["tenant_id"] == tenant.tenant_id
    _, endpoint = make_endpoint(tenant)
    rules = json.dumps(
        [
            {
                "name": "failing",
                "when": [{"kind": "outcome", "statuses": ["failure"]}],
                "then": [{"verb": "interval_hint", "interval_seconds": 60}],
            }
        ]
    )
    settings = tenant.json("planning", "set", endpoint, "--approval", "--rules", rules)
    assert settings["settings"]["approval"] is True
    assert tenant.json("planning", "get", endpoint)["settings"]["rules"][0]["name"] == "failing"
    assert tenant.json("planning", "sessions", "--endpoint", endpoint)["items"] == []
    assert tenant.json("proposals", "list", "--status", "pending")["items"] == []
    missing = tenant.run("proposals", "approve", "prp_01kjq6psg03j132y95g9pxj08k")
    assert missing.code == 3
    schema = tenant.json("manifest", "schema")
    assert schema["title"] == "Cadenza manifest"
    assert "jobs" in schema["properties"]


def test_tables_are_printed_for_people_without_json(tenant: Tenant) -> None:
    make_endpoint(tenant)
    listed = tenant.run("jobs", "list")
    assert listed.code == 0, listed.stderr
    assert "shop" in listed.stdout
    assert "status" in listed.stdout
    assert "{" not in listed.stdout


def test_a_profile_from_the_config_file_names_the_server_and_the_key(tenant: Tenant) -> None:
    saved = tenant.run(
        "profiles",
        "set",
        "local",
        "--url",
        tenant.server.url + "/api/v1",
        "--default",
        CADENZA_NEW_API_KEY=tenant.key,
    )
    assert saved.code == 0, saved.stderr
    assert (tenant.home / "config.toml").stat().st_mode & 0o077 == 0
    assert "local" in tenant.run("profiles", "list").stdout
    me = tenant.run("whoami", "--json", CADENZA_URL="", CADENZA_API_KEY="")
    assert me.json()["tenant_id"] == tenant.tenant_id
    named = tenant.run("whoami", "--profile", "local", "--json", CADENZA_URL="http://127.0.0.1:9")
    assert named.json()["tenant_id"] == tenant.tenant_id
    unknown = tenant.run("whoami", "--profile", "prod")
    assert unknown.code == 2
    assert "prod" in unknown.stderr
