"""``SqlPlannerStore``: ``cadenza.ports.PlannerStore`` over the SQL store's engine.

Shares the engine (and so the connection pool and SQLite's ``BEGIN IMMEDIATE``
setup) of ``SqlStore``; each method is one short transaction. Upserts use the
dialect's ``ON CONFLICT`` (SQLite and PostgreSQL both have it); ``decide_proposal``
is one conditional ``UPDATE``, so concurrent decisions cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cadenza.adapters.store.codec import Codec
from cadenza.adapters.store.documents import planner_doc, planner_from
from cadenza.adapters.store.tables import (
    planner_proposals,
    planner_sessions,
    planner_settings,
    planner_token_usage,
    planner_watches,
    runs,
)
from cadenza.domain import errors
from cadenza.domain.model import Actor, ActorKind, Run
from cadenza.domain.planning import (
    EndpointPlanner,
    PlannerKind,
    PlannerSession,
    Proposal,
    ProposalStatus,
    SessionOutcome,
    ToolCall,
    Trigger,
    Verb,
    WatchState,
)
from cadenza.ports import Page

Row = sa.Row[Any]
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class SqlPlannerStore:
    """See the module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _INSERTS[engine.dialect.name]

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    async def _upsert(self, table: sa.Table, row: dict[str, Any], keys: list[str]) -> None:
        stmt = self._insert(table).values(**row)
        updates = {k: v for k, v in row.items() if k not in keys}
        async with self._tx() as conn:
            await conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates))

    # Settings ---------------------------------------------------------------

    async def get_planner(self, tenant_id: str, endpoint_id: str) -> EndpointPlanner:
        query = sa.select(planner_settings.c.document).where(
            planner_settings.c.endpoint_id == endpoint_id,
            planner_settings.c.tenant_id == tenant_id,
        )
        async with self._tx() as conn:
            document = (await conn.execute(query)).scalar_one_or_none()
        if document is None:
            return EndpointPlanner(tenant_id, endpoint_id)
        return planner_from(tenant_id, endpoint_id, document)

    async def put_planner(self, config: EndpointPlanner) -> None:
        row = {
            "endpoint_id": config.endpoint_id,
            "tenant_id": config.tenant_id,
            "document": planner_doc(config),
        }
        await self._upsert(planner_settings, row, ["endpoint_id"])

    # Sessions ---------------------------------------------------------------

    async def insert_session(self, session: PlannerSession) -> None:
        async with self._tx() as conn:
            await conn.execute(planner_sessions.insert().values(**_session_row(session)))

    async def list_sessions(
        self, tenant_id: str, *, endpoint_id: str | None, cursor: str | None, limit: int
    ) -> Page[PlannerSession]:
        t = planner_sessions
        query = sa.select(t).where(t.c.tenant_id == tenant_id)
        if endpoint_id is not None:
            query = query.where(t.c.endpoint_id == endpoint_id)
        rows = await self._page(query, t.c.id, cursor, limit)
        return _paged([_session(r) for r in rows], limit)

    async def _page(
        self, query: sa.Select[Any], id_col: sa.Column[str], cursor: str | None, limit: int
    ) -> list[Row]:
        if cursor is not None:
            query = query.where(id_col < cursor)
        query = query.order_by(id_col.desc()).limit(limit + 1)
        async with self._tx() as conn:
            return list((await conn.execute(query)).all())

    # Proposals --------------------------------------------------------------

    async def insert_proposal(self, proposal: Proposal) -> None:
        async with self._tx() as conn:
            await conn.execute(planner_proposals.insert().values(**_proposal_row(proposal)))

    async def get_proposal(self, tenant_id: str, proposal_id: str) -> Proposal:
        t = planner_proposals
        query = sa.select(t).where(t.c.id == proposal_id, t.c.tenant_id == tenant_id)
        async with self._tx() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            raise errors.ProposalNotFound(proposal_id)
        return _proposal(row)

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
        t = planner_proposals
        values: dict[str, Any] = {
            "status": status.value,
            "decided_at": at,
            "decided_by": json.dumps([actor.kind.value, actor.id, actor.name]),
        }
        if note:
            values["note"] = note
        stmt = (
            t.update()
            .where(t.c.id == proposal_id, t.c.tenant_id == tenant_id, t.c.status == expect.value)
            .values(**values)
        )
        async with self._tx() as conn:
            changed = (await conn.execute(stmt)).rowcount
        current = await self.get_proposal(tenant_id, proposal_id)
        if not changed:
            raise errors.AlreadyDecided(
                f"Proposal {proposal_id!r} is {current.status.value}, not {expect.value}."
            )
        return current

    async def list_proposals(
        self,
        tenant_id: str,
        *,
        status: ProposalStatus | None,
        endpoint_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Proposal]:
        t = planner_proposals
        query = sa.select(t).where(t.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(t.c.status == status.value)
        if endpoint_id is not None:
            query = query.where(
                sa.or_(t.c.endpoint_id == endpoint_id, t.c.target_id == endpoint_id)
            )
        rows = await self._page(query, t.c.id, cursor, limit)
        return _paged([_proposal(r) for r in rows], limit)

    # Token usage ------------------------------------------------------------

    async def add_tokens(self, tenant_id: str, month: str, tokens: int) -> int:
        t = planner_token_usage
        stmt = self._insert(t).values(tenant_id=tenant_id, month=month, tokens=tokens)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "month"], set_={"tokens": t.c.tokens + tokens}
        )
        async with self._tx() as conn:
            await conn.execute(stmt)
            total = await conn.execute(_usage(tenant_id, month))
            return int(total.scalar_one())

    async def tokens_used(self, tenant_id: str, month: str) -> int:
        async with self._tx() as conn:
            total = (await conn.execute(_usage(tenant_id, month))).scalar_one_or_none()
        return int(total or 0)

    # Watches and the run feed -------------------------------------------------

    async def get_watch(self, endpoint_id: str) -> WatchState | None:
        query = sa.select(planner_watches).where(planner_watches.c.endpoint_id == endpoint_id)
        async with self._tx() as conn:
            row = (await conn.execute(query)).one_or_none()
        return None if row is None else _watch(row)

    async def put_watch(self, state: WatchState) -> None:
        await self._upsert(planner_watches, _watch_row(state), ["endpoint_id"])

    async def due_watches(self, now: datetime, *, limit: int) -> list[WatchState]:
        t = planner_watches
        query = (
            sa.select(t)
            .where(t.c.due_at.is_not(None), t.c.due_at <= now)
            .order_by(t.c.due_at, t.c.endpoint_id)
            .limit(limit)
        )
        async with self._tx() as conn:
            return [_watch(r) for r in (await conn.execute(query)).all()]

    async def runs_after(self, cursor: str | None, *, limit: int) -> list[Run]:
        query = sa.select(runs).order_by(runs.c.id).limit(limit)
        if cursor is not None:
            query = query.where(runs.c.id > cursor)
        async with self._tx() as conn:
            return [Codec.run(r) for r in (await conn.execute(query)).all()]


def _usage(tenant_id: str, month: str) -> sa.Select[Any]:
    t = planner_token_usage
    return sa.select(t.c.tokens).where(t.c.tenant_id == tenant_id, t.c.month == month)


def _paged(items: list[Any], limit: int) -> Page[Any]:
    kept = items[:limit]
    return Page(kept, kept[-1].id if len(items) > limit else None)


def _session_row(s: PlannerSession) -> dict[str, Any]:
    transcript = {
        "planner": s.planner.value,
        "tool_calls": [[c.name, c.arguments, c.outcome] for c in s.tool_calls],
        "proposal_ids": list(s.proposal_ids),
        "next_look_at": s.next_look_at.isoformat() if s.next_look_at else None,
        "error": s.error,
    }
    return {
        "id": s.id,
        "tenant_id": s.tenant_id,
        "job_id": s.job_id,
        "endpoint_id": s.endpoint_id,
        "trigger": s.trigger.value,
        "model": s.model,
        "status": s.outcome.value,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "summary": s.summary,
        "transcript": json.dumps(transcript, default=str),
        "started_at": s.started_at,
        "finished_at": s.finished_at,
    }


def _session(r: Row) -> PlannerSession:
    extra = json.loads(r.transcript)
    look = extra.get("next_look_at")
    return PlannerSession(
        id=r.id,
        tenant_id=r.tenant_id,
        endpoint_id=r.endpoint_id,
        job_id=r.job_id,
        planner=PlannerKind(extra["planner"]),
        trigger=Trigger(r.trigger),
        started_at=r.started_at,
        finished_at=r.finished_at,
        outcome=SessionOutcome(r.status),
        summary=r.summary,
        model=r.model,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        tool_calls=tuple(ToolCall(n, a, o) for n, a, o in extra["tool_calls"]),
        proposal_ids=tuple(extra["proposal_ids"]),
        next_look_at=None if look is None else datetime.fromisoformat(look),
        error=extra["error"],
    )


def _proposal_row(p: Proposal) -> dict[str, Any]:
    decided_by = p.decided_by
    return {
        "id": p.id,
        "tenant_id": p.tenant_id,
        "session_id": p.session_id,
        "endpoint_id": p.endpoint_id,
        "target_id": p.target_id,
        "verb": p.verb.value,
        "arguments": json.dumps(p.arguments),
        "status": p.status.value,
        "note": p.note,
        "created_at": p.created_at,
        "decided_at": p.decided_at,
        "decided_by": None
        if decided_by is None
        else json.dumps([decided_by.kind.value, decided_by.id, decided_by.name]),
    }


def _proposal(r: Row) -> Proposal:
    actor = None
    if r.decided_by is not None:
        kind, actor_id, name = json.loads(r.decided_by)
        actor = Actor(ActorKind(kind), actor_id, name)
    return Proposal(
        id=r.id,
        tenant_id=r.tenant_id,
        session_id=r.session_id,
        endpoint_id=r.endpoint_id,
        target_id=r.target_id,
        verb=Verb(r.verb),
        arguments=json.loads(r.arguments),
        status=ProposalStatus(r.status),
        created_at=r.created_at,
        note=r.note,
        decided_at=r.decided_at,
        decided_by=actor,
    )


def _watch_row(w: WatchState) -> dict[str, Any]:
    return {
        "endpoint_id": w.endpoint_id,
        "tenant_id": w.tenant_id,
        "job_id": w.job_id,
        "due_at": w.due_at,
        "trigger": w.trigger.value,
        "fired": json.dumps({k: v.isoformat() for k, v in w.fired.items()}),
        "errors": w.errors,
    }


def _watch(r: Row) -> WatchState:
    fired = {k: datetime.fromisoformat(v) for k, v in json.loads(r.fired).items()}
    return WatchState(
        tenant_id=r.tenant_id,
        endpoint_id=r.endpoint_id,
        job_id=r.job_id,
        due_at=r.due_at,
        trigger=Trigger(r.trigger),
        fired=fired,
        errors=r.errors,
    )
