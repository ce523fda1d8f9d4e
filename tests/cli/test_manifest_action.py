"""``apply_manifest`` and ``export_manifest`` in-process, over a real SQLite store and
the SQL planner store: the rules of matching, refusing and changing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cadenza.actions import BY_NAME, invoke
from cadenza.actions.base import Context, Services
from cadenza.actions.endpoints import AddEndpointInput
from cadenza.actions.jobs import CreateJobInput
from cadenza.actions.manifest_models import EndpointSpec, JobSpec
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.domain import errors
from cadenza.domain.identity import Scope
from cadenza.domain.model import Actor, ActorKind
from cadenza.testing import FrozenClock
from cadenza.testing.dispatch import FakeDispatcher

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADMIN = frozenset({Scope.ADMIN})


class Waker:
    def wake(self) -> None:
        return None


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    url = f"sqlite+aiosqlite:///{tmp_path}/manifest.db"
    migrate(url)
    store = await open_store(url, FernetSecretBox(FernetSecretBox.generate_key()))
    clock = FrozenClock(START)
    yield Services(
        store=store,
        clock=clock,
        waker=Waker(),
        dispatcher=FakeDispatcher(clock),
        secret_key=b"manifest-tests-secret-0123456789",
        planner=SqlPlannerStore(store.engine),  # type: ignore[attr-defined]
    )
    await store.close()


def caller(services: Services, scopes: frozenset[Scope] = ADMIN, tenant: str = "t1") -> Context:
    return Context.for_caller(services, tenant, Actor(ActorKind.API_KEY, "key_1", "ci"), scopes)


def endpoint(name: str = "health", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "request": {"url": f"https://example.com/{name}"},
        "baseline": {"interval_seconds": 300},
        **fields,
    }


def manifest(*endpoints: dict[str, Any], job: str = "shop") -> dict[str, Any]:
    return {"version": 1, "jobs": [{"name": job, "endpoints": list(endpoints)}]}


async def apply(ctx: Context, document: dict[str, Any], **options: Any) -> dict[str, Any]:
    result = await invoke(BY_NAME["apply_manifest"], ctx, {"manifest": document, **options})
    return result.model_dump(mode="json")


async def export(ctx: Context, *jobs: str) -> dict[str, Any]:
    result = await invoke(BY_NAME["export_manifest"], ctx, {"jobs": list(jobs)})
    return result.model_dump(mode="json", by_alias=True)


async def audit_events(ctx: Context) -> list[dict[str, Any]]:
    page = await invoke(BY_NAME["list_audit_events"], ctx, {"limit": 500})
    return [e.model_dump(mode="json") for e in page.items]


def test_an_endpoint_of_a_manifest_has_exactly_the_fields_of_add_endpoint() -> None:
    own = set(AddEndpointInput.model_fields) - {"job_id", "reason"}
    assert set(EndpointSpec.model_fields) - {"start_paused", "planner"} == own
    for name in own:
        assert EndpointSpec.model_fields[name].annotation == (
            AddEndpointInput.model_fields[name].annotation
        ), name
    assert set(JobSpec.model_fields) - {"endpoints", "alerts"} == set(
        CreateJobInput.model_fields
    ) - {"reason"}


async def test_every_problem_of_a_manifest_is_reported_at_once_by_its_path(
    services: Services,
) -> None:
    document = manifest(
        endpoint("a", baseline={"cron": "61 * * * *"}),
        endpoint("a", min_interval_seconds=600, max_interval_seconds=60),
        endpoint("b", request={"url": "https://${HOST}/b"}),
    )
    with pytest.raises(errors.InvalidInput) as refused:
        await apply(caller(services), document)
    fields = {field for field, _ in refused.value.problems}
    assert fields == {
        "manifest.jobs.0.endpoints.0.baseline.cron",
        "manifest.jobs.0.endpoints.1.min_interval_seconds",
        "manifest.jobs.0.endpoints.1.name",
        "manifest.jobs.0.endpoints.2.request.url",
    }
    assert await audit_events(caller(services)) == []


async def test_a_new_endpoint_cannot_keep_a_secret_it_never_had(services: Services) -> None:
    header = {"name": "Authorization", "value": "********", "secret": True}
    document = manifest(endpoint(request={"url": "https://example.com", "headers": [header]}))
    with pytest.raises(errors.InvalidInput) as refused:
        await apply(caller(services), document)
    assert refused.value.problems[0][0] == "manifest.jobs.0.endpoints.0.request.headers.0.value"


async def test_a_changed_secret_is_an_update_shown_masked_and_the_mask_keeps_it(
    services: Services,
) -> None:
    ctx = caller(services)

    def with_token(value: str) -> dict[str, Any]:
        header = {"name": "Authorization", "value": value, "secret": True}
        return manifest(endpoint(request={"url": "https://example.com", "headers": [header]}))

    await apply(ctx, with_token("one"))
    assert (await apply(ctx, with_token("one")))["changes"] == []
    changed = await apply(ctx, with_token("two"))
    assert changed["updated"] == 1
    assert "one" not in str(changed)
    assert "two" not in str(changed)
    assert (await apply(ctx, with_token("********")))["changes"] == []
    async with services.store.transaction(readonly=True) as tx:
        page = await tx.list_jobs("t1", status=None, now=START, cursor=None, limit=5)
        stored = await tx.list_endpoints(
            "t1", page.items[0].id, include_archived=False, cursor=None, limit=5
        )
    assert stored.items[0].request.headers[0].value == "two"


async def test_an_update_changes_only_what_differs_and_keeps_the_runtime_state(
    services: Services,
) -> None:
    ctx = caller(services)
    first = await apply(ctx, manifest(endpoint(), endpoint("other")))
    health = next(c["id"] for c in first["changes"] if c["endpoint"] == "health")
    await invoke(
        BY_NAME["apply_interval_hint"], ctx, {"endpoint_id": health, "interval_seconds": 30}
    )
    services.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]

    changed = await apply(ctx, manifest(endpoint(min_interval_seconds=20), endpoint("other")))
    assert [(c["op"], c["endpoint"]) for c in changed["changes"]] == [("update", "health")]
    assert changed["changes"][0]["fields"] == [
        {"field": "min_interval_seconds", "before": None, "after": 20.0}
    ]
    shown = await invoke(BY_NAME["get_endpoint"], ctx, {"endpoint_id": health})
    assert shown.hints.interval is not None
    assert shown.min_interval_seconds == 20
    assert (await audit_events(ctx))[0]["changes"] == {
        "op": "update",
        "name": "health",
        "fields": ["min_interval_seconds"],
    }


async def test_a_dry_run_reports_changes_and_writes_nothing(services: Services) -> None:
    ctx = caller(services)
    planned = await apply(ctx, manifest(endpoint()), dry_run=True)
    assert [(c["op"], c["kind"], c["id"]) for c in planned["changes"]] == [
        ("create", "job", None),
        ("create", "endpoint", None),
    ]
    assert planned["dry_run"] is True
    assert (await export(ctx))["jobs"] == []
    assert await audit_events(ctx) == []


async def test_without_prune_what_the_manifest_does_not_name_is_left_alone(
    services: Services,
) -> None:
    ctx = caller(services)
    await apply(ctx, {"jobs": [{"name": "a", "endpoints": [endpoint("x"), endpoint("y")]}]})
    await apply(ctx, {"jobs": [{"name": "b"}]})
    kept = await apply(ctx, {"jobs": [{"name": "a", "endpoints": [endpoint("x")]}]})
    assert kept["changes"] == []
    pruned = await apply(ctx, {"jobs": [{"name": "a", "endpoints": [endpoint("x")]}]}, prune=True)
    assert {(c["kind"], c["job"], c["endpoint"]) for c in pruned["changes"]} == {
        ("endpoint", "a", "y"),
        ("job", "b", None),
    }
    assert [j["name"] for j in (await export(ctx))["jobs"]] == ["a"]


async def test_planner_settings_are_applied_compared_and_kept_when_omitted(
    services: Services,
) -> None:
    ctx = caller(services)
    planner = {
        "approval": True,
        "rules": [
            {
                "name": "failing",
                "when": [{"kind": "outcome", "statuses": ["failure"]}],
                "then": [{"verb": "interval_hint", "interval_seconds": 60}],
            }
        ],
        "policies": {"tighten_on_failures": {"streak": 2}},
    }
    created = await apply(ctx, manifest(endpoint(planner=planner)))
    assert [c["kind"] for c in created["changes"]] == ["job", "endpoint", "planner"]
    assert (await apply(ctx, manifest(endpoint(planner=planner))))["changes"] == []
    exported = await export(ctx)
    assert exported["jobs"][0]["endpoints"][0]["planner"]["approval"] is True
    assert (await apply(ctx, exported))["changes"] == []
    assert (await apply(ctx, manifest(endpoint())))["changes"] == []
    reset = await apply(ctx, manifest(endpoint(planner={})))
    assert [(c["op"], c["kind"]) for c in reset["changes"]] == [("update", "planner")]
    assert (await export(ctx))["jobs"][0]["endpoints"][0]["planner"] is None


async def test_start_paused_pauses_a_new_endpoint_and_needs_schedule_control(
    services: Services,
) -> None:
    writer = caller(services, frozenset({Scope.JOBS_WRITE}))
    with pytest.raises(errors.PermissionDenied):
        await apply(writer, manifest(endpoint(start_paused=True)))
    ctx = caller(services)
    created = await apply(ctx, manifest(endpoint(start_paused=True)))
    endpoint_id = created["changes"][1]["id"]
    shown = await invoke(BY_NAME["get_endpoint"], ctx, {"endpoint_id": endpoint_id})
    assert shown.hints.pause is not None
    assert shown.hints.pause.until is None
    await invoke(
        BY_NAME["pause_or_resume_endpoint"], ctx, {"endpoint_id": endpoint_id, "until": None}
    )
    assert (await apply(ctx, manifest(endpoint(start_paused=True))))["changes"] == []


async def test_two_live_jobs_with_one_name_export_but_do_not_apply(services: Services) -> None:
    ctx = caller(services)
    for _ in range(2):
        await invoke(BY_NAME["create_job"], ctx, {"name": "twin"})
    with pytest.raises(errors.DuplicateName):
        await apply(ctx, manifest(job="twin"))
    exported = await export(ctx, "twin")
    assert [j["name"] for j in exported["jobs"]] == ["twin", "twin"]
    with pytest.raises(errors.InvalidInput) as refused:
        await apply(caller(services, tenant="t2"), exported)
    assert refused.value.problems[0][0] == "manifest.jobs.1.name"


async def test_planner_rules_need_a_server_with_a_planner(services: Services) -> None:
    bare = Services(
        store=services.store,
        clock=services.clock,
        waker=services.waker,
        dispatcher=services.dispatcher,
        secret_key=services.secret_key,
    )
    with pytest.raises(errors.Conflict):
        await apply(caller(bare), manifest(endpoint(planner={"approval": True})))
    assert (await apply(caller(bare), manifest(endpoint())))["created"] == 2


async def test_tenants_never_see_or_change_each_others_jobs(services: Services) -> None:
    await apply(caller(services, tenant="t1"), manifest(endpoint()))
    other = caller(services, tenant="t2")
    assert (await export(other))["jobs"] == []
    with pytest.raises(errors.JobNotFound):
        await export(other, "shop")
    created = await apply(other, manifest(endpoint()), prune=True)
    assert created["created"] == 2
    assert (await export(caller(services, tenant="t1")))["jobs"][0]["name"] == "shop"


async def test_the_overlap_policy_exports_applies_back_unchanged_and_updates(
    services: Services,
) -> None:
    ctx = caller(services)
    await apply(ctx, manifest(endpoint(overlap="allow", max_in_flight=4), endpoint("other")))
    exported = await export(ctx, "shop")
    specs = {e["name"]: e for e in exported["jobs"][0]["endpoints"]}
    assert (specs["health"]["overlap"], specs["health"]["max_in_flight"]) == ("allow", 4)
    assert (specs["other"]["overlap"], specs["other"]["max_in_flight"]) == ("skip", None)
    assert (await apply(ctx, exported))["changes"] == []
    changed = await apply(ctx, manifest(endpoint(overlap="allow"), endpoint("other")))
    assert changed["changes"][0]["fields"] == [{"field": "max_in_flight", "before": 4, "after": 2}]


async def test_an_on_demand_endpoint_round_trips_and_a_removed_baseline_is_a_change(
    services: Services,
) -> None:
    ctx = caller(services)
    alert = {"name": "page", "request": {"url": "https://example.com/page"}}
    first = await apply(ctx, manifest(endpoint(), alert))
    page = next(c["id"] for c in first["changes"] if c["endpoint"] == "page")
    shown = await invoke(BY_NAME["get_endpoint"], ctx, {"endpoint_id": page})
    assert (shown.baseline, shown.state.next_run_at) == (None, None)
    exported = await export(ctx, "shop")
    specs = {e["name"]: e for e in exported["jobs"][0]["endpoints"]}
    assert specs["page"]["baseline"] is None
    assert specs["health"]["baseline"]["interval_seconds"] == 300
    assert (await apply(ctx, exported))["changes"] == []

    on_demand = await apply(ctx, manifest({**endpoint(), "baseline": None}, alert))
    (change,) = on_demand["changes"]
    (field,) = change["fields"]
    assert (change["endpoint"], field["field"], field["after"]) == ("health", "baseline", None)
    assert field["before"]["interval_seconds"] == 300
