"""PostgreSQL finds a fenced row by its primary key, whatever its statistics say.

A fenced statement (``id = … AND lease_owner = … AND lease_epoch = …``) renews,
releases or marks the start of one lease. When PostgreSQL's statistics counted few
leased rows (a fresh table, or one analysed while idle) and the index of leased
rows was keyed on ``lease_owner IS NOT NULL``, the planner read every lease held for
each fenced row: N renewals cost N² row visits. A worker's id is always new to the
statistics, so they count none of its leases. These tests analyse the table while
nothing is leased, take many leases, and read the plans (``EXPLAIN``, no timing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from tests.contract.store_builders import T0, endpoint, job

from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import open_store, sql
from cadenza.adapters.store.scheduling import MARK_STARTED
from cadenza.ports import Claim

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

LEASED = 1500
OWNER = "wrk_plans"


async def _leased_after_idle_statistics(url: str, secret_key: str) -> list[Claim]:
    """Endpoints analysed while unleased, then ``LEASED`` of them claimed."""
    store = await open_store(url, FernetSecretBox(secret_key))
    try:
        owner_job = job()
        async with store.transaction() as tx:
            await tx.insert_job(owner_job)
        await store.import_endpoints([endpoint(owner_job) for _ in range(2 * LEASED)])
        with psycopg.connect(_driver_url(url), autocommit=True) as conn:
            conn.execute("ANALYZE endpoints")
        return await store.claim_due(
            OWNER, T0, lookahead=timedelta(0), limit=LEASED, lease_margin=timedelta(seconds=30)
        )
    finally:
        await store.close()


def _driver_url(url: str) -> str:
    return url.replace("+psycopg", "")


def _plan(url: str, statement: str, params: Sequence[Any] | dict[str, Any]) -> str:
    with psycopg.connect(_driver_url(url)) as conn:
        rows = conn.execute(f"EXPLAIN {statement}", params).fetchall()  # type: ignore[call-overload]
        conn.rollback()
    return "\n".join(str(row[0]) for row in rows)


def _compiled(statement: sa.Executable, **values: Any) -> tuple[str, dict[str, Any]]:
    compiled = statement.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[attr-defined]
    return str(compiled), compiled.params | values


async def test_a_lease_is_renewed_by_its_primary_key(postgres_url: str, secret_key: str) -> None:
    claims = await _leased_after_idle_statistics(postgres_url, secret_key)
    assert len(claims) == LEASED
    first = claims[0]
    statement, params = _compiled(
        sql._EXTEND,
        b_id=first.endpoint.id,
        b_owner=OWNER,
        b_epoch=first.epoch,
        until=T0 + timedelta(minutes=5),
    )
    plan = _plan(postgres_url, statement, params)
    assert "pk_endpoints" in plan, plan
    assert "ix_endpoints_leased" not in plan, plan


async def test_starts_are_marked_by_primary_key(postgres_url: str, secret_key: str) -> None:
    claims = await _leased_after_idle_statistics(postgres_url, secret_key)
    batch = claims[:100]
    ids, epochs = [c.endpoint.id for c in batch], [c.epoch for c in batch]
    plan = _plan(postgres_url, MARK_STARTED.postgres, (T0, ids, epochs, OWNER))
    # Each fence finds its row by the primary key or a hash, never by testing every
    # row of the owner against every fence (a nested loop's "Join Filter").
    assert "Join Filter" not in plan, plan
    assert "ix_endpoints_leased" not in plan, plan


async def test_expired_leases_are_swept_from_the_index_of_leased_rows(
    postgres_url: str, secret_key: str
) -> None:
    await _leased_after_idle_statistics(postgres_url, secret_key)
    statement, params = _compiled(sql._EXPIRED, now=T0, limit=1000)
    plan = _plan(postgres_url, statement, params)
    assert "ix_endpoints_leased" in plan, plan
