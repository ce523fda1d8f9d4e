"""``launch``: an ``overlap=allow`` run hands its lease over as it starts.

Before the request leaves, the store moves the claim's lease to a flight of its own
and plans the endpoint's next slot (``adapters.store.flights``), so that slot can be
claimed while this run is in flight. A ``skip`` endpoint's claim is not touched:
its lease lasts until the run completes, as it always did.
"""

from __future__ import annotations

import contextlib

import structlog

from cadenza.ports import Claim, Clock, Store

log = structlog.get_logger("cadenza.scheduler")


async def launch(store: Store, clock: Clock, worker_id: str, claim: Claim) -> bool:
    """Whether ``claim``'s request may go: False when its lease is no longer ours, or
    the hand-over could not be written (the slot is then released, or else swept)."""
    try:
        lost = await store.launch(worker_id, [claim], clock.now())
    except Exception as exc:  # the request must not go with its lease unsettled
        log.warning("run.launch_failed", endpoint_id=claim.endpoint.id, error=str(exc))
        with contextlib.suppress(Exception):
            await store.release(worker_id, [claim])
        return False
    return not lost
