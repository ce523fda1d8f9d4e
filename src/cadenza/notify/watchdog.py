"""The watchdog's checks: who watches the scheduler itself.

Two conditions raise a watchdog incident, for every tenant that keeps a rule of
kind ``watchdog`` (the service is shared, so each such tenant hears about it):

* a worker whose heartbeat is older than ``stale_after`` (subject ``worker:<id>``);
  it resolves when the worker beats again or leaves the table (a clean stop);
* due runs older than ``backlog_after`` that no worker has claimed (subject
  ``backlog``): the earliest unleased ``next_run_at`` is that old.

Both read the store's own small queries (``list_workers``, ``next_due_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cadenza.domain.alerts import Breach
from cadenza.ports import Store


@dataclass(frozen=True, slots=True)
class WatchdogOptions:
    stale_after: timedelta = timedelta(minutes=2)
    backlog_after: timedelta = timedelta(minutes=5)


async def watchdog_breaches(
    store: Store, now: datetime, options: WatchdogOptions
) -> dict[str, Breach]:
    found: dict[str, Breach] = {}
    for worker in await store.list_workers():
        silent = now - worker.heartbeat_at
        if silent > options.stale_after:
            found[f"worker:{worker.id}"] = Breach(
                f"Worker {worker.id} stopped beating",
                f"Its last heartbeat was {int(silent.total_seconds())} s ago "
                f"(host {worker.host}, pid {worker.pid}).",
            )
    due = await store.next_due_at()
    if due is not None and now - due > options.backlog_after:
        found["backlog"] = Breach(
            "Due runs are waiting for a worker",
            f"The oldest due run was planned for {due.isoformat()}, "
            f"{int((now - due).total_seconds())} s ago, and no worker has taken it.",
        )
    return found
