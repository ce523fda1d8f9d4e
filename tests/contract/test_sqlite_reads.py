"""SQLite reads run inline, and move to a thread when they would hold the event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from store_builders import job

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import open_store
from cadenza.adapters.store.dialect import Sql
from cadenza.adapters.store.migrate import async_url, sync_url
from cadenza.adapters.store.sqlite import READ_BUDGET_S, InlineReads, reader_pragmas
from cadenza.domain import errors

pytestmark = pytest.mark.anyio

# Long enough for SQLite's progress handler to look at the clock many times.
COUNT_TO_100K = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
    "SELECT count(*) FROM c"
)


@dataclass
class Reads:
    inline: InlineReads
    threaded_checkouts: list[int]


class Leaping:
    """A monotonic clock that moves a whole budget on at every reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 2 * READ_BUDGET_S
        return self.now


def _reads(url: str, monotonic: Callable[[], float]) -> tuple[InlineReads, list[int]]:
    threaded = create_async_engine(async_url(url), pool_size=1, max_overflow=0)
    event.listen(threaded.sync_engine, "connect", lambda conn, _record: reader_pragmas(conn))
    checkouts: list[int] = []
    event.listen(threaded.sync_engine, "checkout", lambda *_args: checkouts.append(1))
    return InlineReads(sync_url(url), threaded, reader_pragmas, monotonic), checkouts


@pytest.fixture
async def leaping(sqlite_url: str) -> AsyncIterator[Reads]:
    inline, checkouts = _reads(sqlite_url, Leaping())
    yield Reads(inline, checkouts)
    await inline.close()


@pytest.fixture
async def steady(sqlite_url: str) -> AsyncIterator[Reads]:
    inline, checkouts = _reads(sqlite_url, SystemClock().monotonic)
    yield Reads(inline, checkouts)
    await inline.close()


async def test_a_short_statement_runs_inline(steady: Reads) -> None:
    result = await steady.inline.execute(sa.text("SELECT 41 + 1"))
    assert result.scalar_one() == 42
    assert await steady.inline.fetch(Sql("SELECT ? * 2", ""), [21]) == [(42,)]
    assert steady.threaded_checkouts == []


async def test_a_statement_over_its_budget_finishes_on_a_thread(leaping: Reads) -> None:
    result = await leaping.inline.execute(sa.text(COUNT_TO_100K))
    assert result.scalar_one() == 100_000
    assert len(leaping.threaded_checkouts) == 1


async def test_raw_sql_over_its_budget_finishes_on_a_thread(leaping: Reads) -> None:
    assert await leaping.inline.fetch(Sql(COUNT_TO_100K, ""), []) == [(100_000,)]
    assert len(leaping.threaded_checkouts) == 1


async def test_a_read_only_unit_of_work_cannot_write(sqlite_url: str, secret_key: str) -> None:
    store = await open_store(sqlite_url, FernetSecretBox(secret_key))
    j = job()
    try:
        with pytest.raises(OperationalError, match="readonly"):
            async with store.transaction(readonly=True) as tx:
                await tx.insert_job(j)
        async with store.transaction(readonly=True) as tx:
            with pytest.raises(errors.JobNotFound):
                await tx.get_job(j.tenant_id, j.id)
    finally:
        await store.close()
