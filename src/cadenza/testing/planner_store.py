"""``MemoryPlannerStore``: the fake of ``ports.PlannerStore``.

It reads runs from a ``MemoryStore`` (the planner's feed of new results) and keeps
everything else in dictionaries. Semantics follow the SQL implementation: lists are
newest first by id with keyset cursors, other tenants' rows are not found,
``decide_proposal`` is a compare-and-set on the status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from cadenza.domain import errors
from cadenza.domain.model import Actor, Run
from cadenza.domain.planning import (
    EndpointPlanner,
    PlannerSession,
    Proposal,
    ProposalStatus,
    WatchState,
)
from cadenza.ports import Page
from cadenza.testing.store import MemoryStore

R = TypeVar("R", PlannerSession, Proposal)


def _newest_first(rows: Iterable[R], cursor: str | None, limit: int) -> Page[R]:
    ordered = sorted((r for r in rows if cursor is None or r.id < cursor), key=lambda r: r.id)
    ordered.reverse()
    items = ordered[:limit]
    return Page(items, items[-1].id if len(ordered) > limit else None)


class MemoryPlannerStore:
    """An in-memory ``PlannerStore``; see the module docstring."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self._store = store
        self.planners: dict[str, EndpointPlanner] = {}
        self.sessions: dict[str, PlannerSession] = {}
        self.proposals: dict[str, Proposal] = {}
        self.tokens: dict[tuple[str, str], int] = {}
        self.watches: dict[str, WatchState] = {}

    async def get_planner(self, tenant_id: str, endpoint_id: str) -> EndpointPlanner:
        found = self.planners.get(endpoint_id)
        if found is None or found.tenant_id != tenant_id:
            return EndpointPlanner(tenant_id, endpoint_id)
        return found

    async def put_planner(self, config: EndpointPlanner) -> None:
        self.planners[config.endpoint_id] = config

    async def insert_session(self, session: PlannerSession) -> None:
        self.sessions[session.id] = session

    async def list_sessions(
        self, tenant_id: str, *, endpoint_id: str | None, cursor: str | None, limit: int
    ) -> Page[PlannerSession]:
        rows = (
            s
            for s in self.sessions.values()
            if s.tenant_id == tenant_id and endpoint_id in (None, s.endpoint_id)
        )
        return _newest_first(rows, cursor, limit)

    async def insert_proposal(self, proposal: Proposal) -> None:
        if proposal.id in self.proposals:
            raise errors.Conflict(f"Proposal {proposal.id!r} exists.")
        self.proposals[proposal.id] = proposal

    async def get_proposal(self, tenant_id: str, proposal_id: str) -> Proposal:
        found = self.proposals.get(proposal_id)
        if found is None or found.tenant_id != tenant_id:
            raise errors.ProposalNotFound(proposal_id)
        return found

    async def decide_proposal(
        self,
        tenant_id: str,
        proposal_id: str,
        status: ProposalStatus,
        actor: Actor,
        at: datetime,
        note: str = "",
        *,
        expect: ProposalStatus = ProposalStatus.PENDING,
    ) -> Proposal:
        current = await self.get_proposal(tenant_id, proposal_id)
        if current.status is not expect:
            raise errors.AlreadyDecided(
                f"Proposal {proposal_id!r} is {current.status.value}, not {expect.value}."
            )
        decided = replace(
            current, status=status, decided_at=at, decided_by=actor, note=note or current.note
        )
        self.proposals[proposal_id] = decided
        return decided

    async def list_proposals(
        self,
        tenant_id: str,
        *,
        status: ProposalStatus | None,
        endpoint_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Proposal]:
        rows = (
            p
            for p in self.proposals.values()
            if p.tenant_id == tenant_id
            and status in (None, p.status)
            and endpoint_id in (None, p.endpoint_id, p.target_id)
        )
        return _newest_first(rows, cursor, limit)

    async def add_tokens(self, tenant_id: str, month: str, tokens: int) -> int:
        total = self.tokens.get((tenant_id, month), 0) + tokens
        self.tokens[(tenant_id, month)] = total
        return total

    async def tokens_used(self, tenant_id: str, month: str) -> int:
        return self.tokens.get((tenant_id, month), 0)

    async def get_watch(self, endpoint_id: str) -> WatchState | None:
        return self.watches.get(endpoint_id)

    async def put_watch(self, state: WatchState) -> None:
        self.watches[state.endpoint_id] = state

    async def due_watches(self, now: datetime, *, limit: int) -> list[WatchState]:
        due = [w for w in self.watches.values() if w.due_at is not None and w.due_at <= now]
        due.sort(key=lambda w: (w.due_at or now, w.endpoint_id))
        return due[:limit]

    async def runs_after(self, cursor: str | None, *, limit: int) -> list[Run]:
        if self._store is None:
            return []
        # The test kit reads its sibling fake's table directly; there is no IO to hide.
        runs = self._store._t.runs.values()
        newer = sorted((r for r in runs if cursor is None or r.id > cursor), key=lambda r: r.id)
        return newer[:limit]
