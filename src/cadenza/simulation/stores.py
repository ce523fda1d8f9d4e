"""The stores a replay runs on: the in-memory fake, or a real SQLite database.

In memory, the scheduling state lives in ``MemoryStore``, the test kit's fake of the
``Store`` port: it passes the same contract suite as the SQL store and never leaves
the event loop, so a replay on it is exactly repeatable and takes no real time.

On SQLite the state lives in the real schema (migrated with Alembic) behind
``SqlStore``, whose calls run in a driver thread: ``InFlight`` counts them so that
virtual time stands still until each is done (``VirtualTimeLoop.hold_while``).

Either way the planner's own bookkeeping (rules, watches, sessions, proposals) stays
in a ``MemoryPlannerStore`` (the planner's SQL store is not part of this replay). In
memory it reads new runs from its sibling fake; on SQLite, through the ``Store`` port.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cadenza.adapters.store import migrate, open_store
from cadenza.domain.model import Run
from cadenza.ports import RunFilter, Store, Tx
from cadenza.testing import MemoryStore
from cadenza.testing.planner_store import MemoryPlannerStore

_FEED_PAGE = 500


class _PlainBox:
    """Scenarios send no secret headers; nothing is ever sealed."""

    def seal(self, plaintext: str) -> str:
        return plaintext

    def open(self, sealed: str) -> str:
        return sealed


class InFlight:
    """A ``Store`` that counts its calls under way (transactions from start to end)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls = 0

    def busy(self) -> bool:
        return self.calls > 0

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[Tx]:
        self.calls += 1
        try:
            async with self._store.transaction(readonly=readonly) as tx:
                yield tx
        finally:
            self.calls -= 1

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not inspect.iscoroutinefunction(found):
            return found

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            try:
                return await found(*args, **kwargs)
            finally:
                self.calls -= 1

        return counted


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
    busy: Callable[[], bool]
    """True while a store call is under way outside the event loop."""


def _never() -> bool:
    return False


@asynccontextmanager
async def open_stores(tenant_id: str, database: Path | None) -> AsyncIterator[Stores]:
    """In-memory stores, or a fresh SQLite database at ``database`` (created and
    migrated here; an existing file is refused so a replay never mixes histories)."""
    if database is None:
        memory = MemoryStore()
        yield Stores(memory, MemoryPlannerStore(memory), _never)
        return
    if await asyncio.to_thread(database.exists):
        raise FileExistsError(f"{database} exists; a replay needs a fresh database file.")
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(migrate, url)
    counted = InFlight(await open_store(url, _PlainBox()))
    store = cast(Store, counted)
    try:
        yield Stores(store, StoreFedPlannerStore(store, tenant_id), counted.busy)
    finally:
        await store.close()
