"""Alert rules and channels in a manifest: applied, idempotent, refused whole with
their paths, exported with secrets as references, pruned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_manifest_action import START, Waker, apply, caller, endpoint, export

from cadenza.actions.base import Services
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, migrate, open_store
from cadenza.adapters.store.notify_sql import SqlNotifyStore
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.domain import errors
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher

pytestmark = pytest.mark.anyio


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    url = f"sqlite+aiosqlite:///{tmp_path}/manifest.db"
    migrate(url)
    box = FernetSecretBox(FernetSecretBox.generate_key())
    store = await open_store(url, box)
    assert isinstance(store, SqlStore)
    clock = FrozenClock(START)
    yield Services(
        store=store,
        clock=clock,
        waker=Waker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=b"manifest-tests-secret-0123456789",
        planner=SqlPlannerStore(store.engine),
        notify=SqlNotifyStore(store.engine, box),
    )
    await store.close()


def document(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "channels": [
            {"name": "ops", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"},
            {
                "name": "mail",
                "kind": "email",
                "smtp_host": "smtp.example.com",
                "password": "hunter2",
                "sender": "cadenza@example.com",
                "recipients": ["oncall@example.com"],
            },
        ],
        "alerts": [{"name": "service", "kind": "watchdog", "channels": ["ops"]}],
        "jobs": [
            {
                "name": "shop",
                "endpoints": [endpoint("health")],
                "alerts": [
                    {
                        "name": "health-down",
                        "kind": "consecutive_failures",
                        "failures": 3,
                        "endpoint": "health",
                        "channels": ["ops", "mail"],
                    },
                    {"name": "shop-late", "kind": "no_run", "late_after_seconds": 600},
                ],
            }
        ],
    }
    return {**base, **overrides}


async def test_a_manifest_with_alerts_applies_once_and_a_second_apply_changes_nothing(
    services: Services,
) -> None:
    ctx = caller(services)
    first = await apply(ctx, document())
    kinds = sorted((c["kind"], c["op"]) for c in first["changes"])
    assert kinds.count(("channel", "create")) == 2
    assert kinds.count(("alert", "create")) == 3
    again = await apply(ctx, document())
    assert again["changes"] == []
    assert services.notify is not None
    rules = {r.name: r for r in await services.notify.list_rules("t1")}
    channels = {c.name: c.id for c in await services.notify.list_channels("t1")}
    endpoint_id = rules["health-down"].endpoint_id
    assert endpoint_id is not None
    assert endpoint_id.startswith("ep_")
    assert rules["health-down"].channel_ids == (channels["ops"], channels["mail"])
    assert rules["shop-late"].job_id is not None
    assert rules["service"].job_id is None


async def test_an_export_names_channel_secrets_as_references_and_applies_back_unchanged(
    services: Services,
) -> None:
    ctx = caller(services)
    await apply(ctx, document())
    exported = await export(ctx)
    ops = next(c for c in exported["channels"] if c["name"] == "ops")
    mail = next(c for c in exported["channels"] if c["name"] == "mail")
    assert ops["url"] == "${CHANNEL_OPS_SECRET}"
    assert mail["password"] == "${CHANNEL_MAIL_SECRET}"
    alerts = {a["name"]: a for a in exported["jobs"][0]["alerts"]}
    assert alerts["health-down"]["endpoint"] == "health"
    assert alerts["health-down"]["channels"] == ["ops", "mail"]
    assert [a["name"] for a in exported["alerts"]] == ["service"]
    ops["url"] = "https://hooks.slack.com/services/T/B/x"
    mail["password"] = "hunter2"
    assert (await apply(ctx, exported))["changes"] == []


async def test_a_changed_threshold_updates_the_rule_and_prune_deletes_unnamed_ones(
    services: Services,
) -> None:
    ctx = caller(services)
    await apply(ctx, document())
    changed = document(alerts=[])
    changed["jobs"][0]["alerts"][0]["failures"] = 5
    result = await apply(ctx, changed, prune=True)
    ops = sorted((c["kind"], c["op"], c["endpoint"]) for c in result["changes"])
    assert ops == [("alert", "archive", "service"), ("alert", "update", "health-down")]
    update = next(c for c in result["changes"] if c["op"] == "update")
    assert update["fields"] == [{"field": "failures", "before": 3, "after": 5}]


async def test_bad_alerts_refuse_the_manifest_whole_naming_each_path(services: Services) -> None:
    ctx = caller(services)
    bad = document()
    bad["jobs"][0]["alerts"][0]["endpoint"] = "nowhere"
    bad["jobs"][0]["alerts"][1]["channels"] = ["pager"]
    bad["channels"][1]["password"] = "${MAIL_PASSWORD}"
    with pytest.raises(errors.InvalidInput) as refused:
        await apply(ctx, bad)
    fields = {f for f, _ in refused.value.problems}
    assert fields == {"manifest.jobs.0.alerts.0.endpoint", "manifest.channels.1.password"}
    bad["jobs"][0]["alerts"][0]["endpoint"] = "health"
    bad["channels"][1]["password"] = "x"
    with pytest.raises(errors.InvalidInput) as unknown:
        await apply(ctx, bad)
    assert [f for f, _ in unknown.value.problems] == ["manifest.jobs.0.alerts.1.channels.0"]
    assert (await export(ctx))["jobs"] == []
    assert services.notify is not None
    assert await services.notify.list_channels("t1") == []
