"""The planner port: what a planner sees, what it may want, and what it reports.

A planner is given an ``Observation`` (the endpoint, its job, its recent runs, its
siblings and their latest runs) and a ``Sink``. Every change it wants is an
``Intent`` handed to the sink, which validates it, clamps it, holds it back when it
would only flap the cadence, and then applies it through the catalogue's actions or
leaves it pending for approval. The sink answers in words, so an LLM planner can
read why a proposal was refused. A planner never writes to the store itself.

An analysis that fails or is cancelled still cost something: before its error
propagates, a model-backed planner reports what it spent to the sink
(``report_spent``), so the session and the budget count it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cadenza.actions.base import Context
from cadenza.domain.model import Endpoint, Job, Run
from cadenza.domain.planning import EndpointPlanner, PlannerKind, ToolCall, Trigger, Verb


@dataclass(frozen=True, slots=True)
class Intent:
    """One change a planner wants. ``target`` is an endpoint of the same job, by id or
    by name. ``at`` is the one-shot's run time or the pause's end."""

    verb: Verb
    target: str
    interval: timedelta | None = None
    ttl: timedelta | None = None
    at: datetime | None = None
    reason: str = ""
    origin: str = ""
    """Which rule, policy or tool produced it."""


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything an analysis may read, taken at ``now``. Runs are newest first."""

    now: datetime
    endpoint: Endpoint
    job: Job
    config: EndpointPlanner
    trigger: Trigger
    runs: tuple[Run, ...] = ()
    siblings: tuple[Endpoint, ...] = ()
    sibling_runs: Mapping[str, tuple[Run, ...]] = field(default_factory=dict)
    fired: Mapping[str, datetime] = field(default_factory=dict)
    """When each rule last fired, for cooldowns."""
    token_allowance: int | None = None
    """Tokens a model-backed planner may still spend this month (``None``: no limit)."""
    context: Context | None = None
    """The planner's own caller context, for planners that read beyond the
    observation (the LLM planner's tools). Writes go through the sink only."""

    def sibling_named(self, name: str) -> Endpoint | None:
        return next((s for s in self.siblings if s.name == name), None)

    def resolve(self, target: str) -> Endpoint | None:
        """The endpoint itself or a sibling, by id or name; ``None`` outside the job."""
        for candidate in (self.endpoint, *self.siblings):
            if target in (candidate.id, candidate.name):
                return candidate
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the sink did with an intent: ``applied``, ``pending``, ``refused`` or
    ``suppressed``, with a sentence saying why."""

    status: str
    message: str
    proposal_id: str | None = None


class Sink(Protocol):
    async def submit(self, intent: Intent) -> Verdict: ...

    def report_spent(
        self, input_tokens: int, output_tokens: int, tool_calls: tuple[ToolCall, ...]
    ) -> None:
        """What a failing or cancelled analysis spent and did, replacing earlier reports."""
        ...


class ModelUnavailable(Exception):
    """The model could not answer (transport or HTTP error) after the planner's own
    retries; ``retry_after`` is when its provider asked to be called again, if it did."""

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one analysis concluded. ``look_again_at`` asks for a later analysis even
    without new runs (``None``: only when something happens)."""

    summary: str
    look_again_at: datetime | None = None
    fired: tuple[str, ...] = ()
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: tuple[ToolCall, ...] = ()


class Planner(Protocol):
    """Reads an observation, submits intents to the sink, and reports."""

    @property
    def kind(self) -> PlannerKind: ...

    @property
    def model_name(self) -> str:
        """The model behind it, recorded on every session; empty without one."""
        ...

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis: ...
