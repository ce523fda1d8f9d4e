"""stream_run_events: Server-Sent Events of new runs and schedule changes.

The stream polls the store about once a second for runs and audit events newer
than the last one sent (ids sort by creation time), so it sees work done by any
process, not only this one. Each poll reads newest-first pages and stops at the
last id sent, at most ``_MAX_PAGES`` pages, so a burst costs a bounded amount.
The stream ends after ``max_seconds`` or when the client goes away; clients
reconnect (the ``retry`` field tells browsers how soon).

Ids created in the same millisecond by different processes may sort out of order,
so an event inserted that late can be missed; the stream is for watching, while
``list_runs`` and ``list_audit_events`` are the record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Literal, Protocol, TypeVar

from pydantic import Field

from cadenza.actions.audit import AuditEventOut
from cadenza.actions.base import Action, Context, Example, LineStream
from cadenza.actions.runs import RunOut
from cadenza.actions.wire import EXAMPLE_IDS, Input, Output
from cadenza.domain.identity import Scope
from cadenza.domain.model import AuditEvent, Run
from cadenza.ports import AuditFilter, Page, RunFilter

POLL_SECONDS = 1.0
KEEPALIVE_POLLS = 15
_PAGE = 100
_MAX_PAGES = 10


class Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=Identified)
Fetch = Callable[[str | None, int], Awaitable[Page[R]]]


class StreamEventsInput(Input):
    job_id: str | None = Field(None, max_length=64, description="Only this job's events.")
    endpoint_id: str | None = Field(None, max_length=64, description="Only this endpoint's.")
    max_seconds: float = Field(
        300, ge=1, le=3600, description="Close the stream after this many seconds."
    )


class StreamEvent(Output):
    """One Server-Sent Event's data; the SSE ``event`` field repeats ``type``."""

    type: Literal["run", "schedule_change"]
    at: datetime
    run: RunOut | None = None
    change: AuditEventOut | None = None


def _sort_key(item_id: str) -> str:
    return item_id.rsplit("_", 1)[-1]


async def _newer(fetch: Fetch[R], after: str | None) -> list[R]:
    """Items newer than ``after`` (all of the first page when ``None``), oldest first."""
    found: list[R] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await fetch(cursor, _PAGE)
        for item in page.items:
            if after is not None and _sort_key(item.id) <= _sort_key(after):
                return list(reversed(found))
            found.append(item)
        if page.next_cursor is None or after is None:
            break
        cursor = page.next_cursor
    return list(reversed(found))


def _sse(event: StreamEvent, event_id: str) -> str:
    return f"id: {event_id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"


class _Feed:
    """The two sources one stream follows, read in short separate transactions."""

    def __init__(self, ctx: Context, data: StreamEventsInput) -> None:
        self.ctx = ctx
        self.runs = RunFilter(job_id=data.job_id, endpoint_id=data.endpoint_id)
        self.audit = AuditFilter(target_id=data.endpoint_id or data.job_id)

    async def fetch_runs(self, cursor: str | None, limit: int) -> Page[Run]:
        async with self.ctx.store.transaction(readonly=True) as tx:
            return await tx.list_runs(self.ctx.tenant_id, self.runs, cursor=cursor, limit=limit)

    async def fetch_audit(self, cursor: str | None, limit: int) -> Page[AuditEvent]:
        async with self.ctx.store.transaction(readonly=True) as tx:
            return await tx.list_audit(self.ctx.tenant_id, self.audit, cursor=cursor, limit=limit)


def _last_id(items: Sequence[Identified], current: str | None) -> str | None:
    return items[-1].id if items else current


async def _event_lines(ctx: Context, data: StreamEventsInput) -> AsyncIterator[str]:
    feed = _Feed(ctx, data)
    # What exists at connect time is history, not news: start after the newest.
    first_runs = await feed.fetch_runs(None, 1)
    first_audit = await feed.fetch_audit(None, 1)
    last_run = first_runs.items[0].id if first_runs.items else None
    last_audit = first_audit.items[0].id if first_audit.items else None
    yield f"retry: {int(POLL_SECONDS * 1000)}\n: connected\n\n"
    started = ctx.clock.monotonic()
    polls = 0
    while ctx.clock.monotonic() - started < data.max_seconds:
        runs = await _newer(feed.fetch_runs, last_run)
        for run in runs:
            yield _sse(StreamEvent(type="run", at=run.finished_at, run=RunOut.of(run)), run.id)
        changes = await _newer(feed.fetch_audit, last_audit)
        for change in changes:
            out = AuditEventOut.of(change)
            yield _sse(StreamEvent(type="schedule_change", at=change.at, change=out), change.id)
        last_run, last_audit = _last_id(runs, last_run), _last_id(changes, last_audit)
        polls += 1
        if polls % KEEPALIVE_POLLS == 0:
            yield ": keepalive\n\n"
        await ctx.clock.sleep(POLL_SECONDS)


async def stream_run_events(ctx: Context, data: StreamEventsInput) -> LineStream:
    return LineStream(media_type="text/event-stream", lines=_event_lines(ctx, data))


ACTIONS = (
    Action(
        name="stream_run_events",
        summary="Live feed of runs and schedule changes (SSE)",
        description=(
            "A Server-Sent Events stream: event 'run' for each new run (data: the run) and "
            "'schedule_change' for each new audit event (data: who changed what and why), "
            "optionally only for one job or endpoint. Only events after connecting are sent; "
            "the stream closes after max_seconds (default 300). Not suited to MCP clients; "
            "they should poll list_runs."
        ),
        input_model=StreamEventsInput,
        output_model=StreamEvent,
        handler=stream_run_events,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/events",
        mutates=False,
        idempotent=True,
        streams=("text/event-stream",),
        examples=(
            Example(
                {"job_id": EXAMPLE_IDS["job_id"], "max_seconds": 5},
                "One job's events for five seconds.",
            ),
        ),
    ),
)
