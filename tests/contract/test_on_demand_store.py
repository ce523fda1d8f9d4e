"""On-demand endpoints in every store: kept without a baseline, never claimed nor
counted by ``due_load`` unless something is pending, and back to nothing after the
run that was asked for."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from store_builders import T0, TENANT, claim, current, done, endpoint, job, secs

from cadenza.domain import lifecycle
from cadenza.domain.model import Endpoint, Job, OneShot, PlanSource
from cadenza.ports import Store

pytestmark = pytest.mark.anyio

FAR = timedelta(days=3650)


async def on_demand(store: Store) -> tuple[Job, Endpoint]:
    j = job()
    ep = lifecycle.replan(replace(endpoint(j), baseline=None), j, T0)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    return j, ep


async def test_an_endpoint_without_a_baseline_is_kept_and_never_claimed(store: Store) -> None:
    _, ep = await on_demand(store)
    stored = await current(store, ep)
    assert stored.baseline is None
    assert (stored.next_run_at, stored.next_run_source) == (None, PlanSource.ON_DEMAND)
    assert await store.due_load(T0 + FAR) == 0
    assert await claim(store, "w1", T0 + FAR) == []


async def test_a_one_shot_is_claimed_once_and_then_nothing(store: Store) -> None:
    j, ep = await on_demand(store)
    shot = OneShot("osh-asked", T0 + secs(5), T0 + secs(3600), "asked")
    async with store.transaction() as tx:
        await tx.update_endpoint(lifecycle.with_one_shot(ep, j, shot, T0))
    assert await claim(store, "w1", T0) == []
    assert await store.due_load(T0 + secs(5)) == 1
    [cl] = await claim(store, "w1", T0 + secs(5))
    assert (cl.scheduled_for, cl.source) == (T0 + secs(5), PlanSource.HINT_ONE_SHOT)
    await store.complete("w1", [done(cl)], T0 + secs(6))
    after = await current(store, ep)
    assert (after.next_run_at, after.one_shots, after.lease) == (None, (), None)
    assert await store.due_load(T0 + FAR) == 0
    assert await claim(store, "w1", T0 + FAR) == []


async def test_removing_a_baseline_keeps_the_rest(store: Store) -> None:
    j, ep = await on_demand(store)
    with_baseline = await current(store, ep)
    restored = replace(with_baseline, baseline=endpoint(j).baseline)
    async with store.transaction() as tx:
        await tx.update_endpoint(lifecycle.replan(restored, j, T0))
    assert (await current(store, ep)).next_run_source is PlanSource.BASELINE_INTERVAL
    async with store.transaction() as tx:
        await tx.update_endpoint(lifecycle.replan(replace(restored, baseline=None), j, T0))
    stored = await current(store, ep)
    assert (stored.baseline, stored.next_run_at) == (None, None)
    assert (stored.name, stored.request, stored.tenant_id) == (ep.name, ep.request, TENANT)


async def test_a_baseline_removed_while_its_slot_runs_plans_nothing_after_it(store: Store) -> None:
    j = job()
    ep = endpoint(j)
    async with store.transaction() as tx:
        await tx.insert_job(j)
        await tx.insert_endpoint(ep)
    [cl] = await claim(store, "w1", T0)
    async with store.transaction() as tx:
        stored = await tx.get_endpoint(TENANT, ep.id, for_update=True)
        await tx.update_endpoint(lifecycle.replan(replace(stored, baseline=None), j, T0))
    await store.complete("w1", [done(cl)], T0 + secs(1))
    after = await current(store, ep)
    assert (after.baseline, after.next_run_at, after.lease) == (None, None, None)
    assert await claim(store, "w1", T0 + FAR) == []
