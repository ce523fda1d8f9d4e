"""Cadenza's entities: frozen dataclasses whose constructors enforce invariants.

Conventions: every ``datetime`` is timezone-aware UTC; every duration is a
``timedelta``; ids are opaque strings. Entities never change in place: a change is a
``dataclasses.replace`` (for an endpoint, ``evolve``) that the caller persists.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cadenza.domain import errors, limits
from cadenza.domain.assertions import Comparison
from cadenza.domain.schedule import Baseline, IntervalSchedule


class Method(StrEnum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"

    @classmethod
    def parse(cls, value: str) -> Method:
        if isinstance(value, cls):
            return value
        try:
            return cls(value.upper())
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise errors.UnsupportedMethod(
                f"HTTP method {value!r} is not supported; use one of {allowed}.",
                field="request.method",
            ) from None


class Delivery(StrEnum):
    # What happens to a request cut short by a crash: at_least_once sends it again
    # with the same Idempotency-Key; at_most_once records it as unknown and never
    # sends it again (alerts, payments, publishing). No docstring: it would repeat
    # in the schema of every tool that names an endpoint.

    AT_LEAST_ONCE = "at_least_once"
    AT_MOST_ONCE = "at_most_once"


class CatchUp(StrEnum):
    """What happens to slots missed while Cadenza was down."""

    RUN_ONCE = "run_once"
    SKIP = "skip"


class Overlap(StrEnum):
    # A slot due while an earlier run of the endpoint is in flight: skip waits for
    # it (one run at a time); allow starts it, up to ``max_in_flight`` at once.

    SKIP = "skip"
    ALLOW = "allow"


class RunStatus(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    ERROR = "error"
    LOST = "lost"
    """A dead worker's attempt with no recorded start: its request never left. It
    runs again."""
    UNKNOWN = "unknown"
    """The request may have reached the target (its start was recorded), but its
    outcome was never learned: the worker died or shut down while it was in flight.
    Not a failure."""

    @property
    def ok(self) -> bool:
        return self is RunStatus.SUCCESS


class PlanSource(StrEnum):
    BASELINE_CRON = "baseline-cron"
    BASELINE_INTERVAL = "baseline-interval"
    HINT_INTERVAL = "hint-interval"
    HINT_ONE_SHOT = "hint-one-shot"
    RUN_NOW = "run-now"
    ON_DEMAND = "on-demand"
    CLAMPED_MIN = "clamped-min"
    CLAMPED_MAX = "clamped-max"
    PAUSED = "paused"
    ARCHIVED = "archived"


class ActorKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    AGENT = "agent"
    PLANNER = "planner"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: shown in audit events and on hints."""

    kind: ActorKind
    id: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name or self.id}"


SYSTEM_ACTOR = Actor(ActorKind.SYSTEM, "system", "cadenza")


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: str
    secret: bool = False

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in " \t\r\n:"):
            raise errors.ValidationError(
                f"Header name {self.name!r} is not a valid HTTP header name.", "request.headers"
            )
        if any(c in self.value for c in "\r\n"):
            raise errors.ValidationError(
                f"Header {self.name!r} contains a line break.", "request.headers"
            )


class BodyKind(StrEnum):
    JSON = "json"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Body:
    """A request body; JSON bodies keep their parsed value."""

    kind: BodyKind
    json: Any = None
    text: str = ""
    content_type: str = ""


DEFAULT_EXPECTED_STATUS: frozenset[int] = frozenset(range(200, 300))
_HTTP_STATUSES = frozenset(range(100, 600))


@lru_cache(maxsize=256)
def _http_statuses(codes: frozenset[int]) -> bool:
    """``codes`` is a non-empty set of HTTP status codes; remembered per set, since
    requests share a few sets (the default above, and the store's interned ones)."""
    return bool(codes) and codes <= _HTTP_STATUSES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts inside one run; delays double from ``backoff`` up to ``max_backoff``."""

    max_attempts: int = 1
    backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(seconds=30)
    retry_on_status: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= limits.MAX_ATTEMPTS:
            raise errors.ValidationError(
                f"max_attempts must be between 1 and {limits.MAX_ATTEMPTS}.", "retry.max_attempts"
            )
        if self.backoff < timedelta(0) or self.max_backoff > limits.MAX_RETRY_BACKOFF:
            raise errors.ValidationError(
                "Retry backoff must be non-negative and at most "
                f"{limits.MAX_RETRY_BACKOFF.total_seconds():.0f} s.",
                "retry.backoff_seconds",
            )


@dataclass(frozen=True, slots=True)
class Request:
    method: Method
    url: str
    headers: tuple[Header, ...] = ()
    body: Body | None = None
    timeout: timedelta = limits.DEFAULT_TIMEOUT
    expected_status: frozenset[int] = DEFAULT_EXPECTED_STATUS
    assertion: Comparison | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        # A plain string such as "TRACE" must fail here, typed, not at dispatch time.
        object.__setattr__(self, "method", Method.parse(self.method))
        _check_url(self.url)
        if not timedelta(0) < self.timeout <= limits.MAX_TIMEOUT:
            raise errors.ValidationError(
                f"timeout must be above 0 and at most {limits.MAX_TIMEOUT.total_seconds():.0f} s.",
                "request.timeout_seconds",
            )
        if len(self.headers) > limits.MAX_HEADERS:
            raise errors.ValidationError(
                f"At most {limits.MAX_HEADERS} headers.", "request.headers"
            )
        if not _http_statuses(self.expected_status):
            raise errors.ValidationError(
                "expected_status must list HTTP status codes between 100 and 599.",
                "request.expected_status",
            )

    @property
    def lease_budget(self) -> timedelta:
        """Worst-case time one run may take: every attempt timing out plus backoffs."""
        attempts = self.retry.max_attempts
        return self.timeout * attempts + self.retry.max_backoff * (attempts - 1)


def _check_url(url: str) -> None:
    if len(url) > limits.MAX_URL_LENGTH:
        raise errors.InvalidUrl(
            f"URL is longer than {limits.MAX_URL_LENGTH} characters.", "request.url"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on an out-of-range port
    except ValueError as exc:
        raise errors.InvalidUrl(f"URL {url!r} is malformed: {exc}.", "request.url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.InvalidUrl(
            f"URL {url!r} must be an absolute http:// or https:// URL with a host.",
            "request.url",
        )
    if parts.username or parts.password:
        raise errors.InvalidUrl(
            "Put credentials in a secret header, not in the URL.", "request.url"
        )


@dataclass(frozen=True, slots=True)
class Guardrails:
    """Bounds on every source of cadence; ``min_interval`` doubles as the cooldown."""

    min_interval: timedelta | None = None
    max_interval: timedelta | None = None

    def __post_init__(self) -> None:
        for name in ("min_interval", "max_interval"):
            value = getattr(self, name)
            if value is not None and value < limits.MIN_INTERVAL:
                raise errors.InvalidInterval(
                    f"{name} must be at least {limits.MIN_INTERVAL.total_seconds():.0f} s.",
                    f"{name}_seconds",
                )
        if (
            self.min_interval is not None
            and self.max_interval is not None
            and self.min_interval > self.max_interval
        ):
            raise errors.GuardrailsInverted(
                f"min_interval ({self.min_interval.total_seconds():g} s) is greater than "
                f"max_interval ({self.max_interval.total_seconds():g} s).",
                "min_interval_seconds",
            )


@dataclass(frozen=True, slots=True)
class IntervalHint:
    """A cadence that replaces the baseline until ``expires_at``."""

    interval: timedelta
    expires_at: datetime
    reason: str = ""
    actor: Actor = SYSTEM_ACTOR

    def __post_init__(self) -> None:
        if not limits.MIN_INTERVAL <= self.interval <= limits.MAX_INTERVAL:
            raise errors.InvalidInterval(
                f"Hint interval must be between {limits.MIN_INTERVAL.total_seconds():.0f} s "
                f"and {limits.MAX_INTERVAL.days} days.",
                "interval_seconds",
            )

    def fresh(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class OneShot:
    """A single extra run at ``run_at``; void after ``expires_at``. ``run_now`` marks
    one asked for by ``trigger_run``: its run is recorded with source ``run-now``.
    ``id`` tells it apart in its endpoint's queue (``Endpoint.one_shots``)."""

    id: str
    run_at: datetime
    expires_at: datetime
    reason: str = ""
    actor: Actor = SYSTEM_ACTOR
    run_now: bool = False

    def fresh(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class Pause:
    """``until=None`` pauses indefinitely."""

    until: datetime | None
    reason: str = ""
    actor: Actor = SYSTEM_ACTOR

    def active(self, now: datetime) -> bool:
        return self.until is None or self.until > now


@dataclass(frozen=True, slots=True)
class Lease:
    """Ownership of one endpoint's current slot by one worker.

    ``epoch`` grows with every claim, so a worker whose lease expired and was taken
    over cannot write even if it happens to claim the endpoint again later.
    """

    owner: str
    until: datetime
    epoch: int


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    tenant_id: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    tags: tuple[str, ...] = ()
    pause: Pause | None = None
    planner_enabled: bool = True
    archived_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)

    def paused(self, now: datetime) -> bool:
        return self.pause is not None and self.pause.active(now)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > limits.MAX_NAME_LENGTH:
        raise errors.ValidationError(
            f"name must be 1 to {limits.MAX_NAME_LENGTH} characters.", "name"
        )


@dataclass(frozen=True)
class Endpoint:
    """An HTTP request with a schedule, its guardrails, hints and runtime state.

    ``baseline=None`` makes it on demand: it never runs on its own, only when asked
    (a one-shot, a run-now, an interval hint while fresh); see ``domain.governor``.

    Not a slots class, unlike the other entities: its attributes live in a dict so
    that ``endpoint_from`` and ``evolve`` can build one in a single dict update.
    """

    id: str
    job_id: str
    tenant_id: str
    name: str
    request: Request
    baseline: Baseline | None
    created_at: datetime
    updated_at: datetime
    guardrails: Guardrails = Guardrails()
    catch_up: CatchUp = CatchUp.RUN_ONCE
    delivery: Delivery = Delivery.AT_LEAST_ONCE
    overlap: Overlap = Overlap.SKIP
    max_in_flight: int = 1
    jitter: timedelta = timedelta(0)
    tier: str = ""
    description: str = ""
    planner_enabled: bool = True
    interval_hint: IntervalHint | None = None
    one_shots: tuple[OneShot, ...] = ()
    """Queued one-shots in run order (``run_at``, then arrival); at most
    ``limits.MAX_ONE_SHOTS`` (``lifecycle.with_one_shot``)."""
    pause: Pause | None = None
    archived_at: datetime | None = None
    # Runtime state, written by the scheduler and by schedule-changing actions.
    next_run_at: datetime | None = None
    next_run_source: PlanSource | None = None
    last_run_at: datetime | None = None
    last_scheduled_for: datetime | None = None
    last_status: RunStatus | None = None
    failure_count: int = 0
    success_streak: int = 0
    attempt: int = 1
    retry_after_until: datetime | None = None
    """The target's last Retry-After: no run before it (``domain.retry_after``)."""
    lease: Lease | None = None
    in_flight: int = 0
    """Runs of an ``overlap=allow`` endpoint in flight, as read: the store alone
    counts them (``flights``); at ``max_in_flight`` no slot is claimed."""

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not timedelta(0) <= self.jitter <= limits.MAX_JITTER:
            raise errors.ValidationError(
                f"jitter must be between 0 and {limits.MAX_JITTER.total_seconds():.0f} s.",
                "jitter_seconds",
            )
        if self.max_in_flight != 1 or self.overlap is not Overlap.SKIP:
            _check_overlap(self.overlap, self.max_in_flight)

    def paused(self, now: datetime) -> bool:
        return self.pause is not None and self.pause.active(now)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def on_demand(self) -> bool:
        return self.baseline is None

    @property
    def full(self) -> bool:
        """No slot is claimed until one of its runs in flight ends."""
        return self.in_flight >= self.max_in_flight

    @property
    def anchor(self) -> datetime:
        """Where an interval lattice starts when nothing has run yet."""
        if isinstance(self.baseline, IntervalSchedule) and self.baseline.start_at is not None:
            return self.baseline.start_at
        return self.created_at


def _check_overlap(overlap: Overlap, max_in_flight: int) -> None:
    if overlap is Overlap.SKIP:
        raise errors.ValidationError(
            "max_in_flight applies to overlap 'allow' only; with 'skip' one run is in "
            "flight at a time.",
            "max_in_flight",
        )
    if not 2 <= max_in_flight <= limits.MAX_IN_FLIGHT:
        raise errors.ValidationError(
            f"With overlap 'allow', max_in_flight must be between 2 and {limits.MAX_IN_FLIGHT}.",
            "max_in_flight",
        )


_FIELD_NAMES = frozenset(f.name for f in fields(Endpoint))


def endpoint_from(values: dict[str, Any]) -> Endpoint:
    """``Endpoint(**values)`` for a dict holding every field, checked by the same
    ``__post_init__``: what a store decodes a row with.

    The generated ``__init__`` of a frozen dataclass sets its 30 fields one by one
    through ``object.__setattr__`` (~8 µs); one dict update costs a tenth of that.
    The scheduler builds an endpoint for every claim and two for every run
    (``lifecycle.after_run``), which the generated way made a sixth of a run's CPU
    (``bench/throughput.py``). The field names come from the class itself.
    """
    if values.keys() != _FIELD_NAMES:
        differ = sorted(values.keys() ^ _FIELD_NAMES)
        raise TypeError(f"An Endpoint takes exactly its fields; these differ: {differ}")
    endpoint = object.__new__(Endpoint)
    vars(endpoint).update(values)
    endpoint.__post_init__()
    return endpoint


def evolve(endpoint: Endpoint, **changes: Any) -> Endpoint:
    """``dataclasses.replace(endpoint, **changes)`` through ``endpoint_from``."""
    return endpoint_from({**vars(endpoint), **changes})


@dataclass(frozen=True, slots=True)
class ResponseCapture:
    """What was kept of a response: the first bytes, their type and the full size."""

    body: bytes
    content_type: str
    size: int
    truncated: bool
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    endpoint_id: str
    job_id: str
    tenant_id: str
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime
    status: RunStatus
    source: PlanSource
    attempt: int = 1
    missed_slots: int = 0
    http_status: int | None = None
    error: str = ""
    response: ResponseCapture | None = None
    worker_id: str = ""
    # HTTP requests made within the run, its in-run retries included (0: none, as for
    # a lost attempt). Not ``attempt``, which numbers the slot's tries across runs.
    http_attempts: int = 0

    @property
    def duration(self) -> timedelta:
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One line of a plan's explanation: the rule, what it produced, and why."""

    rule: str
    candidate: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class Plan:
    """When an endpoint runs next (``None``: not scheduled) and the reasoning."""

    next_run_at: datetime | None
    source: PlanSource
    explanation: tuple[PlanStep, ...]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    tenant_id: str
    at: datetime
    actor: Actor
    action: str
    target_kind: str
    target_id: str
    reason: str = ""
    changes: dict[str, Any] = field(default_factory=dict)
