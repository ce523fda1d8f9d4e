"""The queue of one-shots in every store, and the migration that introduced it.

The queue is one JSON column of the endpoint row, so a claim and a completion still
read and write one row per endpoint: a completion consumes the one-shots its run
served and keeps the rest, including one queued while the run was in flight.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import sqlalchemy as sa
from store_builders import T0, TENANT, claim, current, done, endpoint, job, secs

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import migrate, open_store
from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.migrate import sync_url
from cadenza.adapters.store.tables import endpoints, jobs
from cadenza.domain.model import Actor, ActorKind, Endpoint, OneShot, PlanSource
from cadenza.ports import Store

pytestmark = pytest.mark.anyio

ALICE = Actor(ActorKind.USER, "usr_alice", "Alice")


def shot(name: str, at: float, *, run_now: bool = False, reason: str = "") -> OneShot:
    return OneShot(f"osh_{name}", T0 + secs(at), T0 + secs(at + 600), reason, ALICE, run_now)


async def stored(store: Store, ep: Endpoint) -> Endpoint:
    j = job()
    ep = replace(ep, job_id=j.id)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    return ep


async def test_a_queue_round_trips_in_order_with_its_run_now(store: Store) -> None:
    queue = (shot("a", 5, reason="vérifier ✓"), shot("b", 5, run_now=True), shot("c", 90))
    ep = await stored(store, endpoint(job(), one_shots=queue))
    assert (await current(store, ep)).one_shots == queue
    async with store.transaction() as tx:
        await tx.update_endpoint(replace(ep, one_shots=queue[2:]))
    assert (await current(store, ep)).one_shots == queue[2:]
    async with store.transaction() as tx:
        await tx.update_endpoint(replace(ep, one_shots=()))
    assert (await current(store, ep)).one_shots == ()


async def test_a_completion_consumes_the_served_one_shots_and_keeps_the_rest(
    store: Store,
) -> None:
    queue = (shot("a", 0), shot("b", 0), shot("c", 3600))
    ep = await stored(
        store, endpoint(job(), one_shots=queue, next_run_source=PlanSource.HINT_ONE_SHOT)
    )
    [cl] = await claim(store, "w1", T0)
    await store.complete("w1", [done(cl)], T0 + secs(1))
    after = await current(store, ep)
    assert after.one_shots == queue[2:]
    assert after.next_run_at == T0 + secs(60)  # the baseline; the one-shot is an hour on


async def test_a_one_shot_queued_during_a_run_survives_its_completion(store: Store) -> None:
    ep = await stored(store, endpoint(job(), one_shots=(shot("a", 0),)))
    [cl] = await claim(store, "w1", T0)
    async with store.transaction() as tx:
        running = await tx.get_endpoint(TENANT, ep.id, for_update=True)
        later = shot("late", 30)
        await tx.update_endpoint(replace(running, one_shots=(*running.one_shots, later)))
    await store.complete("w1", [done(cl)], T0 + secs(1))
    after = await current(store, ep)
    assert after.one_shots == (later,)
    assert after.next_run_at == T0 + secs(30)


async def test_the_migration_carries_a_stored_one_shot_into_a_queue_of_one(
    blank_sql_url: str, secret_key: str
) -> None:
    j = job()
    ep = endpoint(j)
    codec = Codec(FernetSecretBox(secret_key))
    old = [(T0 + secs(30)).isoformat(), (T0 + secs(90)).isoformat(), "prüfen", ["user", "u1", ""]]
    migrate(blank_sql_url, "0009_http_attempts")
    engine = sa.create_engine(sync_url(blank_sql_url))
    try:
        with engine.begin() as conn:
            conn.execute(jobs.insert(), [codec.job_row(j)])
            # The columns of 0009: later revisions add more than one_shots.
            known = {c["name"] for c in sa.inspect(conn).get_columns("endpoints")}
            row = {k: v for k, v in codec.endpoint_row(ep).items() if k in known}
            conn.execute(endpoints.insert(), [row])
            conn.execute(
                sa.text("UPDATE endpoints SET one_shot = :doc WHERE id = :id"),
                {"doc": json.dumps([*old, True]), "id": ep.id},
            )
    finally:
        engine.dispose()
    migrate(blank_sql_url)
    store = await open_store(blank_sql_url, FernetSecretBox(secret_key))
    try:
        [carried] = (await current(store, ep)).one_shots
    finally:
        await store.close()
    assert carried.id.startswith("osh_")
    assert (carried.run_at, carried.expires_at) == (T0 + secs(30), T0 + secs(90))
    assert (carried.reason, carried.actor, carried.run_now) == (
        "prüfen",
        Actor(ActorKind.USER, "u1", ""),
        True,
    )
