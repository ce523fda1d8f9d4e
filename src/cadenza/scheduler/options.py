"""The worker's knobs, as the scheduler sees them (built from ``Settings`` by the
container; tests build them directly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cadenza.scheduler.housekeeping import Cadence


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    """Seconds everywhere; defaults match ``cadenza.config.Settings``.

    A worker whose heartbeat is older than 1.5 ``heartbeat_interval`` is dead: its
    leases are freed at once, and its row is removed after ``prune_after``.
    ``sole_worker``: the database serves this process alone (SQLite), so every lease
    found at start belongs to a dead predecessor and is freed before the first claim.

    ``max_claimed`` bounds the claims a worker holds at once (0: ``max_concurrency +
    16 × claim_batch``), so a worker never hoards a backlog that others could run.
    Claims that are already due are bounded more tightly, to ``max_concurrency +
    claim_batch``: more would only queue for a concurrency slot.
    """

    worker_id: str
    hostname: str = ""
    pid: int = 0
    claim_batch: int = 500
    lookahead: float = 0.5
    poll_interval: float = 1.0
    lease_margin: float = 30.0
    max_concurrency: int = 512
    max_per_host: int = 64
    shutdown_grace: float = 10.0
    flush_interval: float = 0.05
    flush_batch: int = 1000
    sweep_interval: float = 2.0
    heartbeat_interval: float = 5.0
    stats_interval: float = 10.0
    max_claimed: int = 0
    prune_after: float = 600.0
    sole_worker: bool = False

    def __post_init__(self) -> None:
        if not self.worker_id:
            raise ValueError("A worker needs an id.")
        if self.claim_batch < 1 or self.poll_interval <= 0 or self.lookahead < 0:
            raise ValueError("claim_batch and poll_interval must be positive.")

    @property
    def claim_cap(self) -> int:
        return self.max_claimed or self.max_concurrency + 16 * self.claim_batch

    @property
    def ready_cap(self) -> int:
        return self.max_concurrency + self.claim_batch

    @property
    def lookahead_delta(self) -> timedelta:
        return timedelta(seconds=self.lookahead)

    @property
    def lease_margin_delta(self) -> timedelta:
        return timedelta(seconds=self.lease_margin)

    def cadence(self) -> Cadence:
        # Tick often enough that a lease is renewed at least twice before it ends,
        # even with the short margins tests use, but no busier than 5 Hz.
        tick = min(1.0, max(0.2, self.lease_margin / 4))
        return Cadence(
            tick=tick,
            renew_before=max(self.lease_margin / 2, 2 * tick),
            sweep_every=self.sweep_interval,
            heartbeat_every=self.heartbeat_interval,
            lease_margin=self.lease_margin,
            stale_after=1.5 * self.heartbeat_interval,
            prune_after=self.prune_after,
        )
