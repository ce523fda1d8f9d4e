"""Reads and writes through ``Tx``: round trips, tenant isolation, rollback."""

from __future__ import annotations

from dataclasses import replace

import pytest
from store_builders import OTHER, T0, TENANT, endpoint, job, secs

from cadenza.domain import errors
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.identity import ApiKey, KeyKind, Scope, User
from cadenza.domain.model import (
    Actor,
    ActorKind,
    AuditEvent,
    Body,
    BodyKind,
    CatchUp,
    Guardrails,
    Header,
    IntervalHint,
    Method,
    OneShot,
    Pause,
    Request,
    RetryPolicy,
)
from cadenza.domain.schedule import CronSchedule
from cadenza.ids import new_id
from cadenza.ports import AuditFilter, JobStatus, Store, WorkerInfo

pytestmark = pytest.mark.anyio

ALICE = Actor(ActorKind.USER, "usr_alice", "alice")


def rich_request() -> Request:
    return Request(
        Method.POST,
        "https://api.example.com/v1/hook?x=1",
        headers=(Header("Authorization", "Bearer s3cret", secret=True), Header("X-Env", "prod")),
        body=Body(BodyKind.JSON, json={"a": [1, 2, {"b": None}]}, content_type="application/json"),
        timeout=secs(12.5),
        expected_status=frozenset({200, 201, 204, 304}),
        assertion=Comparison(Op.EQ, "ok", "/status"),
        retry=RetryPolicy(3, secs(2), secs(20), frozenset({500, 503})),
    )


async def test_a_job_round_trips_and_updates(store: Store) -> None:
    j = job(description="d", tags=("a", "b"), pause=Pause(T0 + secs(60), "maint", ALICE))
    async with store.transaction() as tx:
        await tx.insert_job(j)
    async with store.transaction(readonly=True) as tx:
        assert await tx.get_job(TENANT, j.id) == j
    renamed = replace(j, name="renamed", pause=None, updated_at=T0 + secs(5))
    async with store.transaction() as tx:
        await tx.update_job(renamed)
    async with store.transaction() as tx:
        assert await tx.get_job(TENANT, j.id, for_update=True) == renamed


async def test_an_endpoint_with_every_option_round_trips(store: Store) -> None:
    j = job()
    ep = endpoint(
        j,
        request=rich_request(),
        baseline=CronSchedule("*/5 9-17 * * 1-5", "Europe/Berlin"),
        guardrails=Guardrails(secs(30), secs(3600)),
        catch_up=CatchUp.SKIP,
        jitter=secs(1.5),
        tier="gold",
        description="desc",
        planner_enabled=False,
        interval_hint=IntervalHint(secs(120), T0 + secs(600), "load", ALICE),
        one_shots=(OneShot("osh-1", T0 + secs(30), T0 + secs(90), "check"),),
        pause=Pause(None, "hold"),
        failure_count=2,
        success_streak=0,
        attempt=3,
    )
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    async with store.transaction(readonly=True) as tx:
        assert await tx.get_endpoint(TENANT, ep.id) == ep


async def test_update_endpoint_writes_config_and_state_but_not_the_lease(store: Store) -> None:
    j = job()
    ep = endpoint(j)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    [claim] = await store.claim_due("w1", T0, lookahead=secs(0), limit=5, lease_margin=secs(5))
    changed = replace(
        claim.endpoint, name="renamed", lease=None, next_run_at=T0 + secs(99), failure_count=4
    )
    async with store.transaction() as tx:
        await tx.update_endpoint(changed)
    async with store.transaction() as tx:
        stored = await tx.get_endpoint(TENANT, ep.id)
    assert stored == replace(changed, lease=claim.endpoint.lease)


async def test_users_are_found_by_id_and_email_and_counted(store: Store) -> None:
    user = User("usr_1", "a@example.com", "hash", T0, is_admin=True)
    async with store.transaction() as tx:
        assert await tx.count_users() == 0
        await tx.insert_user(user)
    async with store.transaction() as tx:
        assert await tx.get_user("usr_1") == user
        assert await tx.find_user_by_email("a@example.com") == user
        assert await tx.find_user_by_email("b@example.com") is None
        assert await tx.count_users() == 1
        with pytest.raises(errors.UserNotFound):
            await tx.get_user("usr_missing")


async def test_a_second_user_with_the_same_email_is_a_conflict(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert_user(User("usr_1", "a@example.com", "h", T0))
    with pytest.raises(errors.Conflict):
        async with store.transaction() as tx:
            await tx.insert_user(User("usr_2", "a@example.com", "h", T0))
    async with store.transaction() as tx:
        assert await tx.count_users() == 1


async def test_api_keys_are_found_by_prefix_listed_and_updated(store: Store) -> None:
    key = ApiKey(
        new_id("key", T0),
        TENANT,
        "ci",
        "cdz_ab12",
        "digest",
        frozenset({Scope.JOBS_READ, Scope.RUNS_READ}),
        KeyKind.AGENT,
        T0,
        expires_at=T0 + secs(3600),
    )
    async with store.transaction() as tx:
        await tx.insert_api_key(key)
    revoked = replace(key, revoked_at=T0 + secs(5), last_used_at=T0 + secs(1))
    async with store.transaction() as tx:
        assert await tx.find_api_key_by_prefix("cdz_ab12") == key
        assert await tx.find_api_key_by_prefix("cdz_zz") is None
        assert await tx.get_api_key(TENANT, key.id) == key
        for tenant, key_id in ((OTHER, key.id), (TENANT, "key_missing")):
            with pytest.raises(errors.ApiKeyNotFound):
                await tx.get_api_key(tenant, key_id)
        await tx.update_api_key(revoked)
        page = await tx.list_api_keys(TENANT, cursor=None, limit=10)
        assert page.items == [revoked]
        assert page.next_cursor is None
        assert (await tx.list_api_keys(OTHER, cursor=None, limit=10)).items == []
        with pytest.raises(errors.ApiKeyNotFound):
            await tx.update_api_key(replace(key, tenant_id=OTHER))


async def test_audit_events_list_newest_first_with_filters(store: Store) -> None:
    events = [
        AuditEvent(
            new_id("aud", T0 + secs(i)),
            TENANT,
            T0 + secs(i),
            ALICE if i % 2 else Actor(ActorKind.PLANNER, "planner"),
            "apply_interval_hint",
            "endpoint",
            f"ept_{i % 3}",
            reason=f"r{i}",
            changes={"interval_seconds": [60, 30 + i]},
        )
        for i in range(6)
    ]
    async with store.transaction() as tx:
        for event in events:
            await tx.insert_audit(event)
        await tx.insert_audit(replace(events[0], id=new_id("aud", T0), tenant_id=OTHER))
    async with store.transaction(readonly=True) as tx:
        every = await tx.list_audit(TENANT, AuditFilter(), cursor=None, limit=50)
        by_target = await tx.list_audit(
            TENANT, AuditFilter(target_id="ept_1"), cursor=None, limit=50
        )
        by_actor = await tx.list_audit(
            TENANT, AuditFilter(actor_id="usr_alice"), cursor=None, limit=50
        )
        since = await tx.list_audit(TENANT, AuditFilter(since=T0 + secs(4)), cursor=None, limit=50)
    assert every.items == events[::-1]
    assert [e.target_id for e in by_target.items] == ["ept_1", "ept_1"]
    assert {e.actor.id for e in by_actor.items} == {"usr_alice"}
    assert since.items == [events[5], events[4]]


async def test_another_tenants_rows_are_not_found(store: Store) -> None:
    j = job()
    ep = endpoint(j)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    async with store.transaction() as tx:
        with pytest.raises(errors.JobNotFound):
            await tx.get_job(OTHER, j.id)
        with pytest.raises(errors.JobNotFound):
            await tx.get_job(TENANT, "job_missing")
        with pytest.raises(errors.EndpointNotFound):
            await tx.get_endpoint(OTHER, ep.id, for_update=True)
        with pytest.raises(errors.RunNotFound):
            await tx.get_run(OTHER, "run_missing")
        with pytest.raises(errors.JobNotFound):
            await tx.update_job(replace(j, tenant_id=OTHER, name="stolen"))
        with pytest.raises(errors.EndpointNotFound):
            await tx.update_endpoint(replace(ep, tenant_id=OTHER, name="stolen"))
        page = await tx.list_jobs(OTHER, status=None, now=T0, cursor=None, limit=10)
        assert page.items == []
        eps = await tx.list_endpoints(OTHER, j.id, include_archived=True, cursor=None, limit=10)
        assert eps.items == []
    with pytest.raises(errors.JobNotFound):
        async with store.transaction() as tx:
            await tx.insert_endpoint(endpoint(j, tenant_id=OTHER))
    async with store.transaction() as tx:
        assert (await tx.get_job(TENANT, j.id)).name == "nightly"


async def test_jobs_are_listed_by_status_at_the_given_time(store: Store) -> None:
    active = job(name="active")
    expired_pause = job(name="was paused", pause=Pause(T0 - secs(1)))
    paused = job(name="paused", pause=Pause(T0 + secs(60)))
    forever = job(name="forever", pause=Pause(None))
    archived = job(name="archived", archived_at=T0, pause=Pause(None))
    async with store.transaction() as tx:
        for j in (active, expired_pause, paused, forever, archived):
            await tx.insert_job(j)

    async def names(status: JobStatus | None) -> set[str]:
        async with store.transaction(readonly=True) as tx:
            page = await tx.list_jobs(TENANT, status=status, now=T0, cursor=None, limit=50)
        return {j.name for j in page.items}

    assert await names(JobStatus.ACTIVE) == {"active", "was paused"}
    assert await names(JobStatus.PAUSED) == {"paused", "forever"}
    assert await names(JobStatus.ARCHIVED) == {"archived"}
    assert len(await names(None)) == 5


async def test_endpoints_list_hides_archived_unless_asked(store: Store) -> None:
    j = job()
    live = endpoint(j, name="live")
    gone = endpoint(j, name="gone", archived_at=T0, next_run_at=None)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(live)
        await tx.insert_endpoint(gone)
        shown = await tx.list_endpoints(TENANT, j.id, include_archived=False, cursor=None, limit=9)
        every = await tx.list_endpoints(TENANT, j.id, include_archived=True, cursor=None, limit=9)
    assert shown.items == [live]
    assert sorted(e.name for e in every.items) == ["gone", "live"]


async def test_a_failing_transaction_leaves_nothing_behind(store: Store) -> None:
    j = job()

    async def fail_midway() -> None:
        async with store.transaction() as tx:
            await tx.insert_job(j)
            await tx.insert_endpoint(endpoint(j))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_midway()
    async with store.transaction() as tx:
        with pytest.raises(errors.JobNotFound):
            await tx.get_job(TENANT, j.id)
    assert await store.next_due_at() is None


async def test_inserting_a_duplicate_id_is_a_conflict(store: Store) -> None:
    j = job()
    async with store.transaction() as tx:
        await tx.insert_job(j)
    with pytest.raises(errors.Conflict):
        async with store.transaction() as tx:
            await tx.insert_job(j)


async def test_workers_register_beat_and_leave(store: Store) -> None:
    info = WorkerInfo("w-1", "host-a", 123, T0, T0)
    await store.register_worker(info)
    await store.register_worker(WorkerInfo("w-0", "host-b", 7, T0, T0))
    await store.heartbeat_worker("w-1", T0 + secs(5))
    workers = await store.list_workers()
    assert [w.id for w in workers] == ["w-0", "w-1"]
    assert workers[1] == replace(info, heartbeat_at=T0 + secs(5))
    await store.remove_worker("w-0")
    assert [w.id for w in await store.list_workers()] == ["w-1"]


async def test_many_endpoints_and_audit_events_are_inserted_in_one_call(store: Store) -> None:
    j = job()
    batch = [endpoint(j, name=f"check-{i}", request=rich_request()) for i in range(25)]
    events = [
        AuditEvent(new_id("aud", T0), TENANT, T0, ALICE, "apply_manifest", "endpoint", e.id)
        for e in batch
    ]
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoints(batch)
        await tx.insert_audits(events)
        await tx.insert_endpoints([])
        await tx.insert_audits([])
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_endpoints(TENANT, j.id, include_archived=False, cursor=None, limit=50)
        audit = await tx.list_audit(TENANT, AuditFilter(), cursor=None, limit=50)
    assert page.items == batch
    assert sorted(e.id for e in audit.items) == sorted(e.id for e in events)


async def test_a_batch_with_an_endpoint_of_another_tenants_job_is_refused_whole(
    store: Store,
) -> None:
    mine, theirs = job(), job(tenant=OTHER)
    async with store.transaction() as tx:
        await tx.insert_job(mine)
        await tx.insert_job(theirs)
    stolen = endpoint(theirs, tenant_id=TENANT)
    with pytest.raises(errors.JobNotFound):
        async with store.transaction() as tx:
            await tx.insert_endpoints([endpoint(mine), stolen])
    async with store.transaction(readonly=True) as tx:
        page = await tx.list_endpoints(TENANT, mine.id, include_archived=True, cursor=None, limit=5)
    assert page.items == []
