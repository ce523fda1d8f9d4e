"""Jobs as code with the real executable: ``cadenza apply -f`` and ``cadenza export``
against a real ``cadenza serve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_kit import Tenant, make_tenant

from cadenza.cli import exits
from cadenza.domain.identity import Scope

pytestmark = pytest.mark.slow

MANIFEST = """\
version: 1
jobs:
  - name: shop
    description: The storefront, watched.
    tags: [web, checkout]
    endpoints:
      - name: health
        tier: critical
        request:
          url: {target}/flash-sale/ops/traffic
          headers:
            - {{name: Authorization, value: "Bearer ${{SHOP_TOKEN}}", secret: true}}
            - {{name: Accept, value: application/json}}
          timeout_seconds: 10
          expected_status: [200, 204]
          assertion: {{op: exists, json_pointer: /visitors_per_min}}
          retry: {{max_attempts: 3, backoff_seconds: 2}}
        baseline: {{interval_seconds: 300}}
        min_interval_seconds: 15
        max_interval_seconds: 3600
        planner:
          approval: true
          rules:
            - name: surge
              when: [{{kind: response, op: gt, value: 3000, json_pointer: /visitors_per_min}}]
              then: [{{verb: interval_hint, interval_seconds: 30, ttl_seconds: 600}}]
          policies: {{honour_retry_after: true}}
      - name: orders
        request:
          method: POST
          url: {target}/flash-sale/ops/checkout
          body: {{json: {{probe: true}}}}
        baseline: {{cron: "*/5 * * * *", timezone: Europe/Berlin}}
        jitter_seconds: 5
        start_paused: true
  - name: reports
    endpoints:
      - name: nightly
        request: {{url: "{target}/etl-pipeline/load/warehouse"}}
        baseline: {{cron: "@daily"}}
        catch_up: skip
        planner_enabled: false
"""


def write(tenant: Tenant, name: str, text: str) -> Path:
    path = tenant.home / name
    path.write_text(text, encoding="utf-8")
    return path


def manifest(tenant: Tenant) -> Path:
    return write(tenant, "shop.yaml", MANIFEST.format(target=tenant.server.target))


def audit_count(tenant: Tenant) -> int:
    return len(tenant.json("audit", "list", "--all")["items"])


def test_export_applied_to_an_empty_tenant_exports_the_same_manifest(
    tenant: Tenant, tmp_path: Path
) -> None:
    applied = tenant.run("apply", "-f", str(manifest(tenant)), SHOP_TOKEN="t0ken")
    assert applied.code == 0, applied.stderr
    first = tenant.run("export")
    assert first.code == 0, first.stderr
    assert "t0ken" not in first.stdout
    assert "${SHOP_HEALTH_AUTHORIZATION}" in first.stdout
    exported = write(tenant, "exported.yaml", first.stdout)

    empty = make_tenant(tenant.server, tmp_path / "other", frozenset({Scope.ADMIN}))
    (tmp_path / "other").mkdir()
    again = empty.run("apply", "-f", str(exported), SHOP_HEALTH_AUTHORIZATION="Bearer t0ken")
    assert again.code == 0, again.stderr
    second = empty.run("export")
    assert second.code == 0, second.stderr
    assert second.stdout == first.stdout


def test_applying_the_same_file_twice_changes_nothing_the_second_time(tenant: Tenant) -> None:
    path = str(manifest(tenant))
    first = tenant.json("apply", "-f", path, SHOP_TOKEN="t0ken")
    assert (first["created"], first["updated"]) == (6, 0)  # 2 jobs, 3 endpoints, 1 planner
    events = audit_count(tenant)

    second = tenant.json("apply", "-f", path, SHOP_TOKEN="t0ken")
    assert second["changes"] == []
    assert second["unchanged"] == 5
    assert audit_count(tenant) == events
    said = tenant.run("apply", "-f", path, SHOP_TOKEN="t0ken")
    assert "0 created, 0 updated, 0 archived, 5 unchanged" in said.stdout


def test_a_manifest_with_one_bad_field_is_refused_whole_naming_its_line(tenant: Tenant) -> None:
    bad = MANIFEST.format(target=tenant.server.target).replace("@daily", "@sometimes")
    path = write(tenant, "bad.yaml", bad)
    result = tenant.run("apply", "-f", str(path), SHOP_TOKEN="t0ken")
    assert result.code == exits.BAD_INPUT
    line = bad.splitlines().index('        baseline: {cron: "@sometimes"}') + 1
    assert f"bad.yaml:{line}: jobs.1.endpoints.0.baseline.cron" in result.stderr
    assert tenant.json("jobs", "list")["items"] == []


def test_an_unset_variable_is_refused_before_anything_is_sent(tenant: Tenant) -> None:
    result = tenant.run("apply", "-f", str(manifest(tenant)))
    assert result.code == exits.BAD_INPUT
    assert "SHOP_TOKEN is not set" in result.stderr
    assert "shop.yaml:12: jobs.0.endpoints.0.request.headers.0.value" in result.stderr


def test_a_dry_run_prints_the_diff_and_changes_nothing(tenant: Tenant) -> None:
    path = manifest(tenant)
    tenant.json("apply", "-f", str(path), SHOP_TOKEN="t0ken")
    before = tenant.run("export").stdout
    path.write_text(path.read_text().replace("timeout_seconds: 10", "timeout_seconds: 20"))

    dry = tenant.run("apply", "-f", str(path), "--dry-run", SHOP_TOKEN="t0ken")
    assert dry.code == 0, dry.stderr
    assert "~ update endpoint shop/health" in dry.stdout
    assert "request.timeout_seconds: 10 -> 20" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout
    assert tenant.run("export").stdout == before


def test_prune_archives_what_the_file_no_longer_names(tenant: Tenant) -> None:
    path = manifest(tenant)
    tenant.json("apply", "-f", str(path), SHOP_TOKEN="t0ken")
    text = path.read_text()
    shorter = text[: text.index("  - name: reports")].replace("      - name: orders", "#")
    shorter = shorter[: shorter.index("#")]
    path.write_text(shorter)

    kept = tenant.json("apply", "-f", str(path), SHOP_TOKEN="t0ken")
    assert kept["changes"] == []
    pruned = tenant.json("apply", "-f", str(path), "--prune", SHOP_TOKEN="t0ken")
    archived = {(c["kind"], c["job"], c["endpoint"]) for c in pruned["changes"]}
    assert archived == {("endpoint", "shop", "orders"), ("job", "reports", None)}
    exported = tenant.run("export").stdout
    assert "orders" not in exported
    assert "reports" not in exported


def test_a_json_manifest_is_read_from_standard_input(tenant: Tenant) -> None:
    document = {
        "version": 1,
        "jobs": [{"name": "piped", "endpoints": []}],
    }
    result = tenant.run("apply", "-f", "-", "--json", stdin=json.dumps(document))
    assert result.json()["created"] == 1
    assert [j["name"] for j in tenant.json("jobs", "list")["items"]] == ["piped"]
