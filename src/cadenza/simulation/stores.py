"""The stores a replay runs on: the in-memory fake, or a real SQLite database.

On SQLite the scheduling state lives in the real schema (migrated with Alembic) and
goes through ``SqlStore``; the planner's own bookkeeping (rules, watches, sessions,
proposals) stays in memory, fed with new runs read back through the store's
``list_runs``, because the planner's SQL store is not part of this replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from cadenza.adapters.store import migrate, open_store
from cadenza.domain.model import Run
from cadenza.ports import RunFilter, Store
from cadenza.testing import MemoryStore
from cadenza.testing.planner_store import MemoryPlannerStore

_FEED_PAGE = 500


class _PlainBox:
    """Scenarios send no secret headers; nothing is ever sealed."""

    def seal(self, plaintext: str) -> str:
        return plaintext

    def open(self, sealed: str) -> str:
        return sealed


class StoreFedPlannerStore(MemoryPlannerStore):
    """``MemoryPlannerStore`` whose feed of new runs is read from any ``Store``."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        super().__init__(None)
        self._source = store
        self._tenant_id = tenant_id

    async def runs_after(self, cursor: str | None, *, limit: int) -> list[Run]:
        newer: list[Run] = []
        page_cursor: str | None = None
        async with self._source.transaction(readonly=True) as tx:
            while True:
                page = await tx.list_runs(
                    self._tenant_id, RunFilter(), cursor=page_cursor, limit=_FEED_PAGE
                )
                fresh = [r for r in page.items if cursor is None or r.id > cursor]
                newer.extend(fresh)
                # Pages are newest first: once a page reaches the cursor, older ones are read.
                if len(fresh) < len(page.items) or page.next_cursor is None:
                    break
                page_cursor = page.next_cursor
        newer.sort(key=lambda r: r.id)
        return newer[:limit]


@dataclass(frozen=True, slots=True)
class Stores:
    store: Store
    planner: MemoryPlannerStore


@asynccontextmanager
async def open_stores(tenant_id: str, database: Path | None) -> AsyncIterator[Stores]:
    """In-memory stores, or a fresh SQLite database at ``database`` (created and
    migrated here; an existing file is refused so a replay never mixes histories)."""
    if database is None:
        memory = MemoryStore()
        yield Stores(memory, MemoryPlannerStore(memory))
        return
    if await asyncio.to_thread(database.exists):
        raise FileExistsError(f"{database} exists; a replay needs a fresh database file.")
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(migrate, url)
    store = await open_store(url, _PlainBox())
    try:
        yield Stores(store, StoreFedPlannerStore(store, tenant_id))
    finally:
        await store.close()
