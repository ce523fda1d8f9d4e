"""Planner entities: per-endpoint rules and settings, proposals, sessions.

These live in the domain (not in ``cadenza.planner``) because the catalogue's
planner actions (``list_proposals``, ``set_endpoint_rules`` …) read and write them
and the actions layer sits below the planner.

A **rule** is "when every condition holds on ``for_runs`` consecutive runs, do these
steps", optionally with a cooldown. A **proposal** is one concrete change a planner
wants (interval hint, one-shot, pause, resume, clear) on one endpoint of the job; it
is applied through the catalogue's actions, or waits for a person in approval mode.
A **session** records one analysis, whatever its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cadenza.domain import errors, limits
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import Actor, RunStatus

MAX_RULES = 50
MAX_STEPS_PER_RULE = 10
MAX_RULE_WINDOW = 50
"""The most runs a condition or hysteresis window may look back over."""
MIN_LOOK_AGAIN = timedelta(minutes=1)
MAX_LOOK_AGAIN = timedelta(hours=24)
"""An analysis asks to be repeated within these bounds."""


class Metric(StrEnum):
    """Numbers a rule can compare; streaks count consecutive runs up to this one."""

    HTTP_STATUS = "http_status"
    DURATION_SECONDS = "duration_seconds"
    FAILURE_STREAK = "failure_streak"
    SUCCESS_STREAK = "success_streak"


@dataclass(frozen=True, slots=True)
class OutcomeIs:
    """The run's status is one of ``statuses``."""

    statuses: frozenset[RunStatus]


@dataclass(frozen=True, slots=True)
class MetricCompare:
    """``metric op value``; a missing metric (no HTTP status) never holds."""

    metric: Metric
    op: Op
    value: float

    def __post_init__(self) -> None:
        if self.op not in (Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE):
            raise errors.ValidationError(f"Metrics compare with eq/ne/lt/le/gt/ge, not {self.op}.")


@dataclass(frozen=True, slots=True)
class ResponseMatches:
    """The response body (or a JSON Pointer inside it) satisfies ``comparison``."""

    comparison: Comparison


@dataclass(frozen=True, slots=True)
class ResponseChange:
    """``changed``: the response differed from its predecessor at least once in the
    last ``runs`` runs; otherwise it stayed identical across all of them. With a
    ``json_pointer`` only that part of a JSON body is compared (ignore timestamps)."""

    changed: bool
    runs: int = 1
    json_pointer: str | None = None

    def __post_init__(self) -> None:
        _check_window(self.runs, "runs")
        Comparison(Op.EXISTS, json_pointer=self.json_pointer)  # validates the pointer


@dataclass(frozen=True, slots=True)
class SiblingLatest:
    """``condition`` holds on the latest run of the sibling endpoint named ``sibling``."""

    sibling: str
    condition: OutcomeIs | MetricCompare | ResponseMatches | ResponseChange


Condition = OutcomeIs | MetricCompare | ResponseMatches | ResponseChange | SiblingLatest


class Verb(StrEnum):
    """What a proposal does; each maps onto one planner-tool action of the catalogue."""

    INTERVAL_HINT = "interval_hint"
    ONE_SHOT = "one_shot"
    PAUSE = "pause"
    RESUME = "resume"
    CLEAR_HINTS = "clear_hints"


@dataclass(frozen=True, slots=True)
class Step:
    """A rule's action. ``target`` names a sibling in the same job; ``None`` is the
    endpoint itself. ``interval``/``ttl`` for hints; ``delay`` is how far ahead a
    one-shot runs or how long a pause lasts."""

    verb: Verb
    target: str | None = None
    interval: timedelta | None = None
    ttl: timedelta | None = None
    delay: timedelta | None = None

    def __post_init__(self) -> None:
        if self.verb is Verb.INTERVAL_HINT and self.interval is None:
            raise errors.InvalidHint("An interval_hint step needs an interval.", "interval_seconds")
        if self.verb is Verb.PAUSE and self.delay is None:
            raise errors.InvalidHint("A pause step needs a duration (delay).", "delay_seconds")


@dataclass(frozen=True, slots=True)
class Rule:
    """When every condition in ``when`` holds on ``for_runs`` consecutive runs, do
    ``then``; not again within ``cooldown`` of the last firing."""

    name: str
    when: tuple[Condition, ...]
    then: tuple[Step, ...]
    for_runs: int = 1
    cooldown: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > limits.MAX_NAME_LENGTH:
            raise errors.ValidationError("A rule needs a name of 1 to 200 characters.", "name")
        if not self.then or len(self.then) > MAX_STEPS_PER_RULE:
            raise errors.ValidationError(f"A rule needs 1 to {MAX_STEPS_PER_RULE} steps.", "then")
        _check_window(self.for_runs, "for_runs")


def _check_window(value: int, name: str) -> None:
    if not 1 <= value <= MAX_RULE_WINDOW:
        raise errors.ValidationError(f"{name} must be between 1 and {MAX_RULE_WINDOW}.", name)


@dataclass(frozen=True, slots=True)
class AdaptivePolling:
    """Relax toward ``max_interval`` by ``factor`` while responses stay unchanged for
    ``unchanged_runs`` runs; snap back to the baseline on the first change."""

    unchanged_runs: int = 3
    factor: float = 2.0
    json_pointer: str | None = None

    def __post_init__(self) -> None:
        _check_window(self.unchanged_runs, "unchanged_runs")
        if not 1.0 < self.factor <= 10.0:
            raise errors.ValidationError("factor must be above 1 and at most 10.", "factor")


@dataclass(frozen=True, slots=True)
class TightenOnFailures:
    """After ``streak`` consecutive failures run every ``interval`` (default: the
    endpoint's ``min_interval``) for ``ttl``; clear after ``recover_after`` successes."""

    streak: int = 3
    interval: timedelta | None = None
    ttl: timedelta = timedelta(minutes=30)
    recover_after: int = 2

    def __post_init__(self) -> None:
        _check_window(self.streak, "streak")
        _check_window(self.recover_after, "recover_after")


@dataclass(frozen=True, slots=True)
class Policies:
    """Built-in behaviours; each is off until the endpoint opts in."""

    adaptive_polling: AdaptivePolling | None = None
    honour_retry_after: bool = False
    tighten_on_failures: TightenOnFailures | None = None


class PlannerKind(StrEnum):
    RULES = "rules"
    LLM = "llm"


@dataclass(frozen=True, slots=True)
class EndpointPlanner:
    """How the planner treats one endpoint. The on/off switches are
    ``Endpoint.planner_enabled`` and ``Job.planner_enabled``."""

    tenant_id: str
    endpoint_id: str
    kind: PlannerKind = PlannerKind.RULES
    approval: bool = False
    rules: tuple[Rule, ...] = ()
    policies: Policies = Policies()

    def __post_init__(self) -> None:
        if len(self.rules) > MAX_RULES:
            raise errors.ValidationError(f"At most {MAX_RULES} rules per endpoint.", "rules")
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise errors.ValidationError("Rule names must be unique per endpoint.", "rules")


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REFUSED = "refused"
    """Invalid or not allowed; never applied."""
    REJECTED = "rejected"
    """A person said no in approval mode."""
    SUPPRESSED = "suppressed"
    """Hysteresis or a cooldown held it back."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """A change one planner wants, as recorded. ``arguments`` are the wire arguments
    of the catalogue action (``interval_seconds``, ``ttl_seconds``, ``run_at``,
    ``until``, ``reason``) after clamping; ``note`` says what was clamped or why it
    was refused."""

    id: str
    tenant_id: str
    session_id: str
    endpoint_id: str
    target_id: str
    verb: Verb
    arguments: dict[str, Any]
    status: ProposalStatus
    created_at: datetime
    note: str = ""
    decided_at: datetime | None = None
    decided_by: Actor | None = None


class SessionOutcome(StrEnum):
    CHANGED = "changed"
    PROPOSED = "proposed"
    NO_CHANGE = "no_change"
    REFUSED = "refused"
    SKIPPED_BUDGET = "skipped_budget"
    ERROR = "error"
    CANCELLED = "cancelled"
    """Cut short because the planner was stopping."""


class Trigger(StrEnum):
    NEW_RUNS = "new_runs"
    FAILURE = "failure"
    REQUESTED = "requested"
    SIBLING_CHANGED = "sibling_changed"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call of an analysis, as the model made it, with what became of it."""

    name: str
    arguments: dict[str, Any]
    outcome: str


@dataclass(frozen=True, slots=True)
class PlannerSession:
    """One analysis of one endpoint, stored whatever happened."""

    id: str
    tenant_id: str
    endpoint_id: str
    job_id: str
    planner: PlannerKind
    trigger: Trigger
    started_at: datetime
    finished_at: datetime
    outcome: SessionOutcome
    summary: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    proposal_ids: tuple[str, ...] = ()
    next_look_at: datetime | None = None
    error: str = ""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class WatchState:
    """The planner loop's bookkeeping for one endpoint: when to analyse it next and
    why. ``fired`` holds each rule's last firing (cooldowns); ``errors`` counts
    consecutive failed analyses (backoff)."""

    tenant_id: str
    endpoint_id: str
    job_id: str
    due_at: datetime | None = None
    trigger: Trigger = Trigger.NEW_RUNS
    fired: dict[str, datetime] = field(default_factory=dict)
    errors: int = 0


def month_key(now: datetime) -> str:
    """The budget period containing ``now``: a UTC calendar month, ``YYYY-MM``."""
    return f"{now.year:04d}-{now.month:02d}"


MAX_PLANNER_TTL = timedelta(hours=24)
"""Hints written by the planner expire within this."""
MIN_PLANNER_TTL = timedelta(minutes=1)
ONE_SHOT_GRACE = timedelta(minutes=5)
"""A planner one-shot stays valid this long after its run time."""
MAX_PLANNER_ONE_SHOT_AHEAD = limits.MAX_HINT_TTL
"""How far ahead the planner may queue a one-shot: reminders at 7, 14 and 21 days fit."""
