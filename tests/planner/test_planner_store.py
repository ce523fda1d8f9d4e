"""One contract, two PlannerStores: the memory fake and SQL (SQLite, migrated)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.planner_sql import SqlPlannerStore
from cadenza.adapters.store.tables import metadata
from cadenza.adapters.store.tables import runs as runs_table
from cadenza.domain import errors
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import Actor, ActorKind, Run
from cadenza.domain.planning import (
    AdaptivePolling,
    EndpointPlanner,
    PlannerKind,
    PlannerSession,
    Policies,
    Proposal,
    ProposalStatus,
    ResponseChange,
    ResponseMatches,
    Rule,
    SessionOutcome,
    SiblingLatest,
    Step,
    ToolCall,
    Trigger,
    Verb,
    WatchState,
)
from cadenza.ids import new_id
from cadenza.ports import PlannerStore
from cadenza.testing import MemoryStore
from cadenza.testing.planner_store import MemoryPlannerStore

from .factories import T0, TENANT, endpoint, job, run

pytestmark = pytest.mark.anyio
AddRun = Callable[[Run], Awaitable[None]]
PERSON = Actor(ActorKind.USER, "usr_1", "ana")


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this module; skipped without a server."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    name = f"cadenza_planner_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sql_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'planner.db'}"
        migrate(url)
        return url
    url = str(request.getfixturevalue("pg_url"))
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {names}")
    return url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[PlannerStore, AddRun]]:
    if request.param == "memory":
        memory = MemoryStore()
        planner = MemoryPlannerStore(memory)

        async def add_memory(r: Run) -> None:
            memory._t.add_run(r)

        yield planner, add_memory
        return
    url = _sql_url(request.param, request, tmp_path)
    sql = await open_store(url, FernetSecretBox(FernetSecretBox.generate_key()))

    async def add_sql(r: Run) -> None:
        async with sql.transaction() as tx:
            try:
                await tx.get_endpoint(r.tenant_id, r.endpoint_id)
            except errors.NotFound:
                await tx.insert_job(job())
                await tx.insert_endpoint(endpoint("health"))
        async with sql.engine.begin() as conn:
            await conn.execute(runs_table.insert().values(**Codec.run_row(r)))

    try:
        yield SqlPlannerStore(sql.engine), add_sql
    finally:
        await sql.close()


def session(n: int, endpoint_id: str = "end_a", tenant: str = TENANT) -> PlannerSession:
    at = T0 + timedelta(seconds=n)
    return PlannerSession(
        id=new_id("pls", at),
        tenant_id=tenant,
        endpoint_id=endpoint_id,
        job_id="job_1",
        planner=PlannerKind.LLM,
        trigger=Trigger.FAILURE,
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        outcome=SessionOutcome.CHANGED,
        summary="tightened",
        model="m",
        input_tokens=10,
        output_tokens=3,
        tool_calls=(ToolCall("apply_interval_hint", {"interval_seconds": 5.0}, "applied"),),
        proposal_ids=("prp_1",),
        next_look_at=at + timedelta(minutes=5),
        error="",
    )


def proposal(n: int, status: ProposalStatus = ProposalStatus.PENDING) -> Proposal:
    at = T0 + timedelta(seconds=n)
    return Proposal(
        id=new_id("prp", at),
        tenant_id=TENANT,
        session_id="pls_1",
        endpoint_id="end_a",
        target_id="end_b",
        verb=Verb.ONE_SHOT,
        arguments={"run_at": at.isoformat(), "ttl_seconds": 300.0, "reason": "r"},
        status=status,
        created_at=at,
    )


async def test_planner_settings_default_to_rules_and_round_trip(
    stores: tuple[PlannerStore, AddRun],
) -> None:
    store, _ = stores
    assert await store.get_planner(TENANT, "end_a") == EndpointPlanner(TENANT, "end_a")
    config = EndpointPlanner(
        TENANT,
        "end_a",
        kind=PlannerKind.LLM,
        approval=True,
        rules=(
            Rule(
                "slow",
                (
                    ResponseMatches(Comparison(Op.GT, 800, "/p95_ms")),
                    SiblingLatest("db", ResponseChange(changed=True, runs=2)),
                ),
                (Step(Verb.INTERVAL_HINT, interval=timedelta(seconds=5), ttl=timedelta(hours=1)),),
                for_runs=2,
                cooldown=timedelta(minutes=5),
            ),
        ),
        policies=Policies(adaptive_polling=AdaptivePolling(), honour_retry_after=True),
    )
    await store.put_planner(config)
    assert await store.get_planner(TENANT, "end_a") == config
    assert await store.get_planner("usr_other", "end_a") == EndpointPlanner("usr_other", "end_a")
    await store.put_planner(replace(config, approval=False))
    assert not (await store.get_planner(TENANT, "end_a")).approval


async def test_sessions_round_trip_and_page_newest_first(
    stores: tuple[PlannerStore, AddRun],
) -> None:
    store, _ = stores
    made = [session(n, endpoint_id="end_a" if n % 2 else "end_b") for n in range(5)]
    for s in made:
        await store.insert_session(s)
    await store.insert_session(session(9, tenant="usr_other"))
    first = await store.list_sessions(TENANT, endpoint_id=None, cursor=None, limit=3)
    assert [s.id for s in first.items] == [s.id for s in reversed(made)][:3]
    assert first.items[0] == made[-1]
    rest = await store.list_sessions(TENANT, endpoint_id=None, cursor=first.next_cursor, limit=3)
    assert [s.id for s in rest.items] == [made[1].id, made[0].id]
    assert rest.next_cursor is None
    only_a = await store.list_sessions(TENANT, endpoint_id="end_a", cursor=None, limit=10)
    assert {s.endpoint_id for s in only_a.items} == {"end_a"}


async def test_a_proposal_is_decided_once(stores: tuple[PlannerStore, AddRun]) -> None:
    store, _ = stores
    p = proposal(1)
    await store.insert_proposal(p)
    assert await store.get_proposal(TENANT, p.id) == p
    with pytest.raises(errors.ProposalNotFound):
        await store.get_proposal("usr_other", p.id)
    decided = await store.decide_proposal(TENANT, p.id, ProposalStatus.APPLIED, PERSON, T0, "ok")
    assert (decided.status, decided.decided_by, decided.note) == (
        ProposalStatus.APPLIED,
        PERSON,
        "ok",
    )
    with pytest.raises(errors.AlreadyDecided):
        await store.decide_proposal(TENANT, p.id, ProposalStatus.REJECTED, PERSON, T0)
    refused = await store.decide_proposal(
        TENANT, p.id, ProposalStatus.REFUSED, PERSON, T0, "stale", expect=ProposalStatus.APPLIED
    )
    assert refused.status is ProposalStatus.REFUSED
    with pytest.raises(errors.ProposalNotFound):
        await store.decide_proposal(TENANT, "prp_missing", ProposalStatus.REJECTED, PERSON, T0)


async def test_proposals_filter_by_status_and_endpoint(stores: tuple[PlannerStore, AddRun]) -> None:
    store, _ = stores
    pending = proposal(1)
    applied = proposal(2, ProposalStatus.APPLIED)
    for p in (pending, applied):
        await store.insert_proposal(p)
    page = await store.list_proposals(
        TENANT, status=ProposalStatus.PENDING, endpoint_id=None, cursor=None, limit=10
    )
    assert [p.id for p in page.items] == [pending.id]
    by_target = await store.list_proposals(
        TENANT, status=None, endpoint_id="end_b", cursor=None, limit=1
    )
    assert [p.id for p in by_target.items] == [applied.id]
    assert by_target.next_cursor == applied.id


async def test_token_usage_adds_up_per_tenant_and_month(
    stores: tuple[PlannerStore, AddRun],
) -> None:
    store, _ = stores
    assert await store.tokens_used(TENANT, "2026-03") == 0
    assert await store.add_tokens(TENANT, "2026-03", 120) == 120
    assert await store.add_tokens(TENANT, "2026-03", 30) == 150
    await store.add_tokens(TENANT, "2026-04", 5)
    await store.add_tokens("usr_other", "2026-03", 7)
    assert await store.tokens_used(TENANT, "2026-03") == 150


async def test_watches_come_due_in_order(stores: tuple[PlannerStore, AddRun]) -> None:
    store, _ = stores
    later = WatchState(TENANT, "end_b", "job_1", T0 + timedelta(minutes=5), Trigger.REQUESTED)
    sooner = WatchState(TENANT, "end_a", "job_1", T0, Trigger.FAILURE, fired={"slow": T0}, errors=2)
    idle = WatchState(TENANT, "end_c", "job_1")
    for w in (later, sooner, idle):
        await store.put_watch(w)
    assert await store.get_watch("end_a") == sooner
    assert await store.due_watches(T0, limit=10) == [sooner]
    assert await store.due_watches(T0 + timedelta(hours=1), limit=10) == [sooner, later]
    await store.put_watch(replace(sooner, due_at=None))
    assert await store.due_watches(T0 + timedelta(hours=1), limit=1) == [later]
    assert await store.get_watch("end_missing") is None


async def test_the_run_feed_reads_every_tenants_runs_oldest_first(
    stores: tuple[PlannerStore, AddRun],
) -> None:
    store, add = stores
    ep = endpoint("health")
    made = [
        replace(
            run(ep, T0 + timedelta(seconds=n), body={"n": n}),
            id=new_id("run", T0 + timedelta(seconds=n)),
        )
        for n in range(3)
    ]
    for r in reversed(made):
        await add(r)
    assert await store.runs_after(None, limit=10) == made
    assert await store.runs_after(made[0].id, limit=1) == [made[1]]
