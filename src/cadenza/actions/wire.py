"""Wire types shared by the actions' input and output models.

Conventions (ACTIONS.md): times are RFC 3339 strings in UTC; durations are seconds
as numbers in fields named ``…_seconds``; ids are opaque strings. Every limit comes
from ``cadenza.domain.limits``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from cadenza.domain import limits
from cadenza.domain.model import Actor, Plan, PlanSource, PlanStep


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("the time is out of range in UTC") from None


UtcTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="RFC 3339 time with an offset, e.g. 2026-01-01T09:00:00Z."),
]

Reason = Annotated[
    str,
    Field(
        max_length=limits.MAX_REASON_LENGTH,
        description="Why the change is made; shown in the audit log and on hints.",
        examples=["Deploy in progress: watch the health check closely."],
    ),
]

CURSOR_PATTERN = r"^[a-z]{1,16}_[0-9a-hjkmnp-tv-z]{26}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def _check_cursor(value: str | None) -> str | None:
    # A cursor is the last id of a page (``cadenza.ids``). Anything else is a
    # mistake to report, not a query that silently finds nothing.
    if value is not None and not _CURSOR.match(value):
        raise ValueError("not a cursor: pass back a page's next_cursor unchanged")
    return value


Cursor = Annotated[
    str | None,
    Field(
        max_length=200,
        description="Opaque cursor from a previous page's next_cursor; omit for the first page.",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
    AfterValidator(_check_cursor),
]

PageLimit = Annotated[
    int,
    Field(
        ge=1,
        le=limits.MAX_PAGE_SIZE,
        description=f"Items per page, at most {limits.MAX_PAGE_SIZE}.",
    ),
]

Description = Annotated[
    str,
    Field(max_length=limits.MAX_DESCRIPTION_LENGTH, description="Free text for people."),
]

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.MAX_NAME_LENGTH,
        description="A short human name.",
        examples=["nightly-report"],
    ),
]


EXAMPLE_IDS = {
    "job_id": "job_01hx0000000000000000000000",
    "endpoint_id": "ep_01hx0000000000000000000000",
    "run_id": "run_01hx0000000000000000000000",
    "key_id": "key_01hx0000000000000000000000",
    "proposal_id": "prp_01hx0000000000000000000000",
    "channel_id": "chn_01hx0000000000000000000000",
    "rule_id": "alr_01hx0000000000000000000000",
    "incident_id": "inc_01hx0000000000000000000000",
    "one_shot_id": "osh_01hx0000000000000000000000",
}
"""The placeholder ids that the actions' examples use, by field name."""


def id_field(kind: str, example: str) -> Any:
    """A required opaque id of ``kind``; the same description everywhere."""
    return Field(min_length=1, max_length=64, description=f"The {kind}'s id.", examples=[example])


class Input(BaseModel):
    """Base of every input model: unknown fields are errors, not silently ignored, and
    no text anywhere in the input holds a NUL character (PostgreSQL cannot store one;
    every backend refuses it alike, naming the field)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if _holds_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


def _holds_nul(value: Any) -> bool:
    """Whether a NUL hides in ``value``: a string, or the keys and items of the
    collections JSON decodes to. Nested input models check their own fields."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(item) for item in value)
    return False


class Output(BaseModel):
    """Base of every output model."""

    model_config = ConfigDict(populate_by_name=True)


class ActorOut(Output):
    kind: str = Field(description="user, api_key, agent, planner or system.")
    id: str
    name: str = ""

    @classmethod
    def of(cls, actor: Actor) -> ActorOut:
        return cls(kind=actor.kind.value, id=actor.id, name=actor.name)


class PlanStepOut(Output):
    rule: str = Field(description="The governor rule that produced this step.")
    candidate: datetime | None = Field(description="The time this rule proposed, if any.")
    note: str = Field(description="Why, in words.")

    @classmethod
    def of(cls, step: PlanStep) -> PlanStepOut:
        return cls(rule=step.rule, candidate=step.candidate, note=step.note)


class PlanOut(Output):
    next_run_at: datetime | None = Field(description="When it runs next; null: not scheduled.")
    source: PlanSource = Field(description="Which rule decided the time.")
    explanation: list[PlanStepOut] = Field(description="Every rule applied, in order.")

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls(
            next_run_at=plan.next_run_at,
            source=plan.source,
            explanation=[PlanStepOut.of(s) for s in plan.explanation],
        )


def rfc3339(value: datetime) -> str:
    """A UTC time as RFC 3339 with a ``Z``, the form used for times inside audit changes."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def duration(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
