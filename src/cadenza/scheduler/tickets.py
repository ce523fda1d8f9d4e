"""A claimed slot as the worker tracks it, and the run row it turns into."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from urllib.parse import urlsplit

from cadenza.domain.catchup import BASELINE_SOURCES, standing_slot
from cadenza.domain.governor import missed_slots
from cadenza.domain.model import Run, RunStatus
from cadenza.ids import new_id
from cadenza.ports import Claim, DispatchResult


class Stage(Enum):
    WAITING = "waiting"
    """In the starter's heap until its slot."""
    QUEUED = "queued"
    """Launched, waiting for a concurrency slot: not started, still releasable."""
    RUNNING = "running"
    """The request is being made: only a completion ends it."""
    FINISHED = "finished"
    """The request ended; its completion is not written yet. Still tracked, so its
    lease is renewed until it is (however long the database is away)."""


@dataclass(slots=True, eq=False)
class Ticket:
    claim: Claim
    lease_until: datetime
    host: str
    due: float
    stage: Stage = Stage.WAITING
    cancelled: bool = False
    """Set when the lease was lost before the run started: never start it."""
    ready: bool = False
    """Counted among the due-or-running claims that the ready cap bounds."""
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.claim.endpoint.id, self.claim.epoch)


def ticket_for(claim: Claim, claimed_at: datetime, lease_margin: timedelta) -> Ticket:
    """Track ``claim``; its lease runs from ``claimed_at`` as the store computed it."""
    request = claim.endpoint.request
    return Ticket(
        claim=claim,
        lease_until=claimed_at + request.lease_budget + lease_margin,
        host=host_of(request.url),
        due=claim.scheduled_for.timestamp(),
    )


@lru_cache(maxsize=4096)
def host_of(url: str) -> str:
    """The host a URL's runs count against; cached, since endpoints of one target
    share URLs and every claim needs it."""
    return urlsplit(url).hostname or ""


def run_from(claim: Claim, result: DispatchResult, worker_id: str) -> Run:
    """The run row for ``claim``: timing and outcome from the dispatcher, identity from
    the claim; missed slots are counted for baseline slots only (a hint or one-shot
    does not stand for a lattice slot)."""
    endpoint = claim.endpoint
    missed = 0
    if claim.source in BASELINE_SOURCES:
        # A late run stands for the last slot due before it started, not only for
        # the one it was claimed for (catch_up=run_once after downtime).
        slot = standing_slot(endpoint, claim.scheduled_for, result.started_at)
        missed = missed_slots(endpoint, slot)
    return Run(
        id=new_id("run", result.finished_at),
        endpoint_id=endpoint.id,
        job_id=endpoint.job_id,
        tenant_id=endpoint.tenant_id,
        scheduled_for=claim.scheduled_for,
        started_at=result.started_at,
        finished_at=result.finished_at,
        status=result.status,
        source=claim.source,
        attempt=claim.attempt,
        missed_slots=missed,
        http_status=result.http_status,
        error=result.error,
        response=result.response,
        worker_id=worker_id,
        http_attempts=result.attempts,
    )


def failed_result(
    started_at: datetime,
    finished_at: datetime,
    error: str,
    status: RunStatus = RunStatus.ERROR,
) -> DispatchResult:
    """A result for a run the dispatcher could not finish: a bug (``error``), or a
    shutdown that cut the request short (``unknown``: not the target's failure)."""
    return DispatchResult(
        status=status, started_at=started_at, finished_at=finished_at, error=error
    )
