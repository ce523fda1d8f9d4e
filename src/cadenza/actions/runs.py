"""Run history: list_runs, get_run_details, export_runs.

Lists page by keyset (newest first) and never count rows. The export streams pages
in separate short read transactions, so a slow reader never holds one open.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from cadenza.actions.base import Action, Context, Example, LineStream
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    Cursor,
    Input,
    Output,
    PageLimit,
    UtcTime,
    id_field,
)
from cadenza.domain import limits
from cadenza.domain.identity import Scope
from cadenza.domain.model import PlanSource, ResponseCapture, Run, RunStatus
from cadenza.ports import RunFilter

_DECODABLE = ("text/", "application/json", "application/xml", "application/problem+json")


class RunOut(Output):
    id: str
    endpoint_id: str
    job_id: str
    scheduled_for: datetime = Field(description="The slot this run stands for.")
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    status: RunStatus
    source: PlanSource = Field(description="The plan source that scheduled it.")
    attempt: int = Field(description="The slot's try: a lost try's slot runs again as the next.")
    http_attempts: int = Field(description="HTTP requests made within the run, retries included.")
    missed_slots: int = Field(description="Baseline slots collapsed or skipped before it.")
    http_status: int | None
    error: str

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls.model_validate(run_fields(run))


def run_fields(run: Run) -> dict[str, Any]:
    """A run as ``RunOut``'s fields. Pages validate a list of these in one call:
    pydantic-core does that faster than building the models one by one in Python,
    and a page of runs is the API's hottest read."""
    return {
        "id": run.id,
        "endpoint_id": run.endpoint_id,
        "job_id": run.job_id,
        "scheduled_for": run.scheduled_for,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_seconds": (run.finished_at - run.started_at).total_seconds(),
        "status": run.status,
        "source": run.source,
        "attempt": run.attempt,
        "http_attempts": run.http_attempts,
        "missed_slots": run.missed_slots,
        "http_status": run.http_status,
        "error": run.error,
    }


class ResponseOut(Output):
    content_type: str
    size: int = Field(description="Full size in bytes; the body kept may be shorter.")
    truncated: bool
    body_text: str | None = Field(description="The kept body when it is text, else null.")
    body_base64: str | None = Field(description="The kept body when it is binary, else null.")
    headers: list[tuple[str, str]]


class RunDetailOut(RunOut):
    worker_id: str
    response: ResponseOut | None


class RunFilterInput(Input):
    job_id: str | None = Field(None, max_length=64, description="Only this job's runs.")
    endpoint_id: str | None = Field(None, max_length=64, description="Only this endpoint's.")
    status: RunStatus | None = Field(None, description="Only runs with this status.")
    since: UtcTime | None = Field(None, description="Runs started at or after this time.")
    until: UtcTime | None = Field(None, description="Runs started before this time.")

    @model_validator(mode="after")
    def _ordered(self) -> RunFilterInput:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since must not be after until")
        return self

    def to_filter(self) -> RunFilter:
        return RunFilter(self.job_id, self.endpoint_id, self.status, self.since, self.until)


class ListRunsInput(RunFilterInput):
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class RunPage(Output):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


async def list_runs(ctx: Context, data: ListRunsInput) -> RunPage:
    async with ctx.store.transaction(readonly=True) as tx:
        page = await tx.list_runs(
            ctx.tenant_id, data.to_filter(), cursor=data.cursor, limit=data.limit
        )
    return RunPage.model_validate(
        {"items": [run_fields(r) for r in page.items], "next_cursor": page.next_cursor}
    )


class GetRunInput(Input):
    run_id: str = id_field("run", EXAMPLE_IDS["run_id"])


async def get_run_details(ctx: Context, data: GetRunInput) -> RunDetailOut:
    async with ctx.store.transaction(readonly=True) as tx:
        run = await tx.get_run(ctx.tenant_id, data.run_id)
    base = RunOut.of(run).model_dump()
    return RunDetailOut(**base, worker_id=run.worker_id, response=response_out(run.response))


def response_out(capture: ResponseCapture | None) -> ResponseOut | None:
    """The kept response: text bodies decoded as UTF-8, anything else in base64."""
    if capture is None:
        return None
    text: str | None = None
    if capture.content_type.startswith(_DECODABLE) or not capture.content_type:
        try:
            text = capture.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    return ResponseOut(
        content_type=capture.content_type,
        size=capture.size,
        truncated=capture.truncated,
        body_text=text,
        body_base64=None if text is not None else base64.b64encode(capture.body).decode(),
        headers=list(capture.headers),
    )


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class ExportRunsInput(RunFilterInput):
    format: ExportFormat = Field(ExportFormat.CSV, description="csv or jsonl (JSON Lines).")
    max_rows: int = Field(
        100_000, ge=1, le=1_000_000, description="Stop after this many runs (newest first)."
    )


_CSV_COLUMNS = tuple(RunOut.model_fields)
_MEDIA: dict[ExportFormat, Literal["text/csv", "application/jsonl"]] = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.JSONL: "application/jsonl",
}


async def export_runs(ctx: Context, data: ExportRunsInput) -> LineStream:
    return LineStream(
        media_type=_MEDIA[data.format],
        lines=_export_lines(ctx, data),
        filename=f"runs.{data.format.value}",
    )


async def _export_lines(ctx: Context, data: ExportRunsInput) -> AsyncIterator[str]:
    if data.format is ExportFormat.CSV:
        yield _csv_line(_CSV_COLUMNS)
    sent = 0
    cursor: str | None = None
    flt = data.to_filter()
    while sent < data.max_rows:
        limit = min(limits.MAX_PAGE_SIZE, data.max_rows - sent)
        async with ctx.store.transaction(readonly=True) as tx:
            page = await tx.list_runs(ctx.tenant_id, flt, cursor=cursor, limit=limit)
        for run in page.items:
            row = RunOut.of(run)
            if data.format is ExportFormat.CSV:
                values = row.model_dump(mode="json")
                yield _csv_line(tuple(_cell(values[c]) for c in _CSV_COLUMNS))
            else:
                yield row.model_dump_json() + "\n"
        sent += len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _csv_line(values: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


ACTIONS = (
    Action(
        name="list_runs",
        summary="List runs, newest first",
        description=(
            "Lists recorded runs of the caller's endpoints, newest first, filtered by job, "
            "endpoint, status and a start-time window (since inclusive, until exclusive). "
            "Pages by keyset: pass next_cursor back as cursor; there are no totals."
        ),
        input_model=ListRunsInput,
        output_model=RunPage,
        handler=list_runs,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/runs",
        mutates=False,
        idempotent=True,
        examples=(
            Example(
                {"endpoint_id": EXAMPLE_IDS["endpoint_id"], "status": "failure", "limit": 20},
                "The endpoint's latest failures.",
            ),
            Example({"since": "2026-01-01T00:00:00Z", "limit": 50}, "Runs since a time."),
        ),
    ),
    Action(
        name="get_run_details",
        summary="One run with its response",
        description=(
            "Returns one run: timing (seconds), status, HTTP status, error text, the plan "
            "source that scheduled it, attempts, missed slots, and the kept (possibly "
            "truncated) response body and headers. Use after list_runs to see why a run failed."
        ),
        input_model=GetRunInput,
        output_model=RunDetailOut,
        handler=get_run_details,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/runs/{run_id}",
        mutates=False,
        idempotent=True,
        examples=(Example({"run_id": EXAMPLE_IDS["run_id"]}),),
    ),
    Action(
        name="export_runs",
        summary="Export runs as CSV or JSON Lines",
        description=(
            "Streams runs matching the filters, newest first, as CSV (with a header row) or "
            "JSON Lines (one run object per line), up to max_rows. For analysis outside "
            "Cadenza; use list_runs for browsing."
        ),
        input_model=ExportRunsInput,
        output_model=RunOut,
        handler=export_runs,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/runs/export",
        mutates=False,
        idempotent=True,
        streams=("text/csv", "application/jsonl"),
        examples=(
            Example({"endpoint_id": EXAMPLE_IDS["endpoint_id"], "format": "jsonl"}),
            Example({"status": "failure", "format": "csv", "max_rows": 1000}),
        ),
    ),
)
