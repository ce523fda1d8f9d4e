"""Wire models of an endpoint's configuration and state, and their domain mapping.

The ``…Spec`` models serve both directions: they are what ``add_endpoint`` and
``update_endpoint`` accept and what every endpoint output shows. Secret header
values are write-only: outputs show ``********`` in their place, and sending that
mask back in an update keeps the stored value as long as the URL keeps its origin.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

import pydantic
from pydantic import ConfigDict, Field, model_validator

from cadenza.actions.targets import check_sendable, same_origin
from cadenza.actions.wire import (
    ActorOut,
    Description,
    Input,
    Name,
    Output,
    UtcTime,
    duration,
    seconds,
)
from cadenza.domain import errors, limits
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import (
    DEFAULT_EXPECTED_STATUS,
    Body,
    BodyKind,
    CatchUp,
    Delivery,
    Endpoint,
    Guardrails,
    Header,
    Method,
    OneShot,
    Overlap,
    PlanSource,
    Request,
    RetryPolicy,
    RunStatus,
)
from cadenza.domain.schedule import CRON_FORM, Baseline, CronSchedule, IntervalSchedule

SECRET_MASK = "********"  # noqa: S105 - the mask shown instead of a secret
_MAX_INTERVAL_S = limits.MAX_INTERVAL.total_seconds()
_MIN_INTERVAL_S = limits.MIN_INTERVAL.total_seconds()
MAX_JITTER_S = limits.MAX_JITTER.total_seconds()

IntervalSeconds = Annotated[
    float,
    Field(
        ge=_MIN_INTERVAL_S,
        le=_MAX_INTERVAL_S,
        description=f"Seconds, from {_MIN_INTERVAL_S:g} to {_MAX_INTERVAL_S:g} (400 days).",
        examples=[300],
    ),
]
StatusCode = Annotated[int, Field(ge=100, le=599)]


class HeaderSpec(Input):
    name: str = Field(min_length=1, max_length=256, examples=["Authorization"])
    value: str = Field(max_length=8192, description="Shown as ******** when secret.")
    secret: bool = Field(False, description="Encrypted at rest and never returned.")


class BodySpec(Input):
    """Exactly one of ``json`` (any JSON value) or ``text``."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"properties": {"json": {"not": {"type": "null"}}}, "required": ["json"]},
                {"properties": {"text": {"type": "string"}}, "required": ["text"]},
            ]
        }
    )

    json_: Any = Field(None, alias="json", description="A JSON body, sent as application/json.")
    text: str | None = Field(None, max_length=limits.MAX_BODY_BYTES, description="A text body.")
    content_type: str = Field("", max_length=200, description="Overrides the Content-Type.")

    @model_validator(mode="after")
    def _one_kind(self) -> BodySpec:
        has_json = "json_" in self.model_fields_set and self.json_ is not None
        if has_json == (self.text is not None):
            raise ValueError("give exactly one of json or text")
        if has_json and len(json.dumps(self.json_)) > limits.MAX_BODY_BYTES:
            raise ValueError(f"the JSON body is larger than {limits.MAX_BODY_BYTES} bytes")
        return self


class AssertionSpec(Input):
    """Success also needs this to hold: ``op`` applied to the value at ``json_pointer``
    (RFC 6901) in a JSON response, or to the whole body text when the pointer is null."""

    op: Op = Field(examples=["eq"])
    value: Any = Field(None, examples=["ok"])
    json_pointer: str | None = Field(None, max_length=500, examples=["/status"])


class RetrySpec(Input):
    max_attempts: int = Field(1, ge=1, le=limits.MAX_ATTEMPTS, description="Attempts per run.")
    backoff_seconds: float = Field(
        1.0, ge=0, le=limits.MAX_RETRY_BACKOFF.total_seconds(), description="First delay."
    )
    max_backoff_seconds: float = Field(
        30.0, ge=0, le=limits.MAX_RETRY_BACKOFF.total_seconds(), description="Delay cap."
    )


class RequestSpec(Input):
    method: Method = Field(Method.GET, description="HTTP method.")
    url: str = Field(
        min_length=1,
        max_length=limits.MAX_URL_LENGTH,
        description="Absolute http:// or https:// URL.",
        examples=["https://example.com/health"],
    )
    headers: list[HeaderSpec] = Field(default_factory=list, max_length=limits.MAX_HEADERS)
    body: BodySpec | None = None
    timeout_seconds: float = Field(
        limits.DEFAULT_TIMEOUT.total_seconds(),
        gt=0,
        le=limits.MAX_TIMEOUT.total_seconds(),
        description="Per attempt.",
    )
    expected_status: list[StatusCode] | None = Field(
        None, min_length=1, max_length=500, description="Success codes; null means any 2xx."
    )
    assertion: AssertionSpec | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)


class HeaderPatch(HeaderSpec):
    value: str | None = Field(  # type: ignore[assignment]
        max_length=8192
    )


class RequestPatch(RequestSpec):
    # A JSON Merge Patch (RFC 7396) of the stored request: omitted fields stay, objects
    # merge field by field, null removes; headers match by name, a null value removes
    # one; ``body`` is replaced whole. (A comment, not a docstring: the schema of every
    # tool carries descriptions, and update_endpoint's own says it.)

    url: str | None = Field(  # type: ignore[assignment]
        None, min_length=1, max_length=limits.MAX_URL_LENGTH
    )
    headers: list[HeaderPatch] = Field(  # type: ignore[assignment]
        default_factory=list, max_length=limits.MAX_HEADERS
    )


class BaselineSpec(Input):
    """Exactly one of ``cron`` (with ``timezone``) or ``interval_seconds`` (with an
    optional ``start_at`` that anchors the lattice)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {"cron": {"type": "string"}, "start_at": {"type": "null"}},
                    "required": ["cron"],
                },
                {
                    "properties": {"interval_seconds": {"type": "number"}},
                    "required": ["interval_seconds"],
                },
            ]
        }
    )

    cron: str | None = Field(
        None,
        max_length=200,
        description=CRON_FORM,
        examples=["*/5 * * * *"],
    )
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"])
    interval_seconds: IntervalSeconds | None = None
    start_at: UtcTime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> BaselineSpec:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron or interval_seconds")
        if self.cron is not None and self.start_at is not None:
            raise ValueError("start_at applies to interval baselines only")
        return self


ON_DEMAND_TEXT = "None: on demand, runs only when asked (one-shot, run-now, hint)."
DELIVERY_TEXT = "A request cut short by a crash: re-sent (same Idempotency-Key) or not."
OVERLAP_TEXT = "A slot due while a run is in flight: skip it, or allow up to max_in_flight."
IN_FLIGHT_TEXT = f"allow only: 2-{limits.MAX_IN_FLIGHT}, default {limits.DEFAULT_IN_FLIGHT}."


def in_flight_bound(overlap: Overlap, given: int | None, previous: Endpoint | None = None) -> int:
    """``max_in_flight`` for ``overlap``: the one given, else the previous one while
    the policy stays, else the policy's default (``Endpoint`` checks the value)."""
    if given is not None:
        return given
    if previous is not None and previous.overlap is overlap:
        return previous.max_in_flight
    return limits.DEFAULT_IN_FLIGHT if overlap is Overlap.ALLOW else 1


class EndpointFields(Input):
    """What configures an endpoint: ``add_endpoint``'s input and an endpoint of a
    manifest (``manifest_models.EndpointSpec``) both extend it."""

    name: Name
    description: Description = ""
    tier: str = Field("", max_length=64, description="A label such as critical or batch.")
    request: RequestSpec
    baseline: BaselineSpec | None = Field(None, description=ON_DEMAND_TEXT)
    min_interval_seconds: IntervalSeconds | None = Field(
        None, description="Never run more often than this; also the cooldown."
    )
    max_interval_seconds: IntervalSeconds | None = Field(
        None, description="Never leave a longer gap than this."
    )
    catch_up: CatchUp = Field(CatchUp.RUN_ONCE, description="After downtime: run_once or skip.")
    delivery: Delivery = Field(Delivery.AT_LEAST_ONCE, description=DELIVERY_TEXT)
    overlap: Overlap = Field(Overlap.SKIP, description=OVERLAP_TEXT)
    max_in_flight: int | None = Field(None, description=IN_FLIGHT_TEXT)
    jitter_seconds: float = Field(
        0, ge=0, le=MAX_JITTER_S, description="Deterministic spread added to baseline slots."
    )
    planner_enabled: bool = Field(True, description="Let the planner write hints here.")

    def configuration(self, previous: Request | None = None) -> dict[str, Any]:
        """The ``Endpoint`` fields these describe, but its name and identity; a secret
        header sent as the mask keeps ``previous``'s value (``build_request``)."""
        return {
            "description": self.description,
            "tier": self.tier,
            "request": build_request(self.request, previous),
            "baseline": None if self.baseline is None else build_baseline(self.baseline),
            "guardrails": Guardrails(
                duration(self.min_interval_seconds), duration(self.max_interval_seconds)
            ),
            "catch_up": self.catch_up,
            "delivery": self.delivery,
            "overlap": self.overlap,
            "max_in_flight": in_flight_bound(self.overlap, self.max_in_flight),
            "jitter": timedelta(seconds=self.jitter_seconds),
            "planner_enabled": self.planner_enabled,
        }


class IntervalHintOut(Output):
    interval_seconds: float
    expires_at: datetime
    reason: str
    actor: ActorOut


class OneShotOut(Output):
    id: str = Field(description="Cancel it with cancel_one_shot.")
    run_at: datetime
    expires_at: datetime
    reason: str
    actor: ActorOut
    run_now: bool = Field(description="Queued by trigger_run.")

    @classmethod
    def of(cls, shot: OneShot) -> OneShotOut:
        return cls(
            id=shot.id,
            run_at=shot.run_at,
            expires_at=shot.expires_at,
            reason=shot.reason,
            actor=ActorOut.of(shot.actor),
            run_now=shot.run_now,
        )


class PauseOut(Output):
    until: datetime | None = Field(description="null: paused until resumed.")
    reason: str
    actor: ActorOut


class ActiveHints(Output):
    """Hints in force now; expired ones are not shown."""

    interval: IntervalHintOut | None = None
    one_shots: list[OneShotOut] = Field(
        default_factory=list, description="Queued one-shots, in run order."
    )
    pause: PauseOut | None = None


class EndpointState(Output):
    next_run_at: datetime | None = Field(description="null: not scheduled.")
    next_run_source: PlanSource | None = Field(description="The rule that chose next_run_at.")
    last_run_at: datetime | None
    last_scheduled_for: datetime | None
    last_status: RunStatus | None
    failure_count: int = Field(description="Consecutive failures; drives interval backoff.")
    success_streak: int
    running: bool = Field(description="A worker holds the endpoint's current slot.")
    in_flight: int = Field(description="Runs in flight (overlap allow).")


class EndpointOut(Output):
    id: str
    job_id: str
    name: str
    description: str
    tier: str
    request: RequestSpec
    baseline: BaselineSpec | None
    min_interval_seconds: float | None
    max_interval_seconds: float | None
    catch_up: CatchUp
    delivery: Delivery
    overlap: Overlap
    max_in_flight: int
    jitter_seconds: float
    planner_enabled: bool
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    state: EndpointState
    hints: ActiveHints


def build_request(spec: RequestSpec, previous: Request | None = None) -> Request:
    """The domain request. A secret header sent as the mask keeps the value ``previous``
    holds under that name, but only while the URL keeps its origin (scheme, host and
    port): secrets are bound to where they were entered, so a caller who cannot read
    them cannot send them elsewhere; such a header is dropped (and audited). A mask
    under a name with no stored secret is refused before (``refuse_empty_placeholders``)."""
    check_sendable(spec.url, [(h.name, h.value) for h in spec.headers])
    kept: dict[str, str] = {}
    if previous is not None and same_origin(spec.url, previous.url):
        kept = {h.name.lower(): h.value for h in previous.headers if h.secret}
    headers = tuple(
        Header(h.name, kept[h.name.lower()] if _masked(h) else h.value, h.secret)
        for h in spec.headers
        if not _masked(h) or h.name.lower() in kept
    )
    return Request(
        method=spec.method,
        url=spec.url,
        headers=headers,
        body=_build_body(spec.body),
        timeout=timedelta(seconds=spec.timeout_seconds),
        expected_status=(
            frozenset(spec.expected_status) if spec.expected_status else DEFAULT_EXPECTED_STATUS
        ),
        assertion=_build_assertion(spec.assertion),
        retry=RetryPolicy(
            max_attempts=spec.retry.max_attempts,
            backoff=timedelta(seconds=spec.retry.backoff_seconds),
            max_backoff=timedelta(seconds=spec.retry.max_backoff_seconds),
        ),
    )


def refuse_empty_placeholders(spec: RequestSpec, previous: Request | None) -> None:
    """A header whose value is the mask while no secret is stored under its name would
    be sent literally: refused, naming the header."""
    stored = set() if previous is None else {h.name.lower() for h in previous.headers if h.secret}
    for index, header in enumerate(spec.headers):
        if header.value == SECRET_MASK and header.name.lower() not in stored:
            raise errors.ValidationError(
                f"Header {header.name!r} is the {SECRET_MASK} placeholder, but no secret is "
                "stored under that name: send its value.",
                f"request.headers.{index}.value",
            )


def merge_request(previous: Request, patch: RequestPatch) -> RequestSpec:
    """``patch`` applied to ``previous`` as a JSON Merge Patch (see ``RequestPatch``);
    the result is checked as a whole request, its problems named under ``request``."""
    base = request_spec(previous).model_dump(by_alias=True)
    changes = patch.model_dump(by_alias=True, exclude_unset=True)
    headers = changes.pop("headers", None)
    if "body" in changes:
        base["body"] = None  # a body is one value: replaced, never merged
    merged = _merge_patch(base, changes)
    if headers is not None:
        merged["headers"] = _merge_headers(base["headers"], headers)
    try:
        spec = RequestSpec.model_validate(merged)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(["request", *(str(p) for p in problem["loc"])])
        raise errors.ValidationError(str(problem["msg"]), where) from None
    refuse_empty_placeholders(spec, previous)
    return spec


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 section 2, for JSON values as Python objects."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


def _merge_headers(stored: list[dict[str, Any]], given: list[dict[str, Any]]) -> list[Any]:
    """Headers matched by name, case-insensitively: a given one replaces the stored one
    in place (or is appended), a null value removes it."""
    merged: dict[str, dict[str, Any]] = {h["name"].lower(): h for h in stored}
    for header in given:
        key = header["name"].lower()
        if header.get("value") is None:
            merged.pop(key, None)
            continue
        previous = merged.get(key, {})
        merged[key] = {"secret": previous.get("secret", False), **header}
    return list(merged.values())


def _masked(header: HeaderSpec) -> bool:
    return header.secret and header.value == SECRET_MASK


def _build_body(spec: BodySpec | None) -> Body | None:
    if spec is None:
        return None
    if spec.text is not None:
        return Body(BodyKind.TEXT, text=spec.text, content_type=spec.content_type)
    return Body(BodyKind.JSON, json=spec.json_, content_type=spec.content_type)


def _build_assertion(spec: AssertionSpec | None) -> Comparison | None:
    if spec is None:
        return None
    try:
        return Comparison(spec.op, spec.value, spec.json_pointer)
    except errors.ValidationError as exc:
        raise errors.ValidationError(exc.message, "request.assertion.json_pointer") from None


def build_baseline(spec: BaselineSpec) -> Baseline:
    if spec.cron is not None:
        return CronSchedule(spec.cron, spec.timezone)
    assert spec.interval_seconds is not None  # guaranteed by BaselineSpec's validator
    return IntervalSchedule(timedelta(seconds=spec.interval_seconds), spec.start_at)


def request_spec(request: Request) -> RequestSpec:
    """The stored request as shown. Built without the input checks (``model_construct``):
    they guard what comes in, and a row stored under older rules must stay readable."""
    return RequestSpec.model_construct(
        method=request.method,
        url=request.url,
        headers=[
            HeaderSpec.model_construct(
                name=h.name, value=SECRET_MASK if h.secret else h.value, secret=h.secret
            )
            for h in request.headers
        ],
        body=_body_spec(request.body),
        timeout_seconds=request.timeout.total_seconds(),
        expected_status=(
            None
            if request.expected_status == DEFAULT_EXPECTED_STATUS
            else sorted(request.expected_status)
        ),
        assertion=(
            None
            if request.assertion is None
            else AssertionSpec.model_construct(
                op=request.assertion.op,
                value=request.assertion.value,
                json_pointer=request.assertion.json_pointer,
            )
        ),
        retry=RetrySpec.model_construct(
            max_attempts=request.retry.max_attempts,
            backoff_seconds=request.retry.backoff.total_seconds(),
            max_backoff_seconds=request.retry.max_backoff.total_seconds(),
        ),
    )


def _body_spec(body: Body | None) -> BodySpec | None:
    if body is None:
        return None
    if body.kind is BodyKind.TEXT:
        return BodySpec.model_construct(text=body.text, content_type=body.content_type)
    return BodySpec.model_construct(json_=body.json, content_type=body.content_type)


def baseline_spec(baseline: Baseline | None) -> BaselineSpec | None:
    if baseline is None:
        return None
    if isinstance(baseline, CronSchedule):
        return BaselineSpec(cron=baseline.expression, timezone=baseline.timezone)
    return BaselineSpec(interval_seconds=baseline.every.total_seconds(), start_at=baseline.start_at)


def endpoint_out(endpoint: Endpoint, now: datetime) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        job_id=endpoint.job_id,
        name=endpoint.name,
        description=endpoint.description,
        tier=endpoint.tier,
        request=request_spec(endpoint.request),
        baseline=baseline_spec(endpoint.baseline),
        min_interval_seconds=seconds(endpoint.guardrails.min_interval),
        max_interval_seconds=seconds(endpoint.guardrails.max_interval),
        catch_up=endpoint.catch_up,
        delivery=endpoint.delivery,
        overlap=endpoint.overlap,
        max_in_flight=endpoint.max_in_flight,
        jitter_seconds=endpoint.jitter.total_seconds(),
        planner_enabled=endpoint.planner_enabled,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        archived_at=endpoint.archived_at,
        state=EndpointState(
            next_run_at=endpoint.next_run_at,
            next_run_source=endpoint.next_run_source,
            last_run_at=endpoint.last_run_at,
            last_scheduled_for=endpoint.last_scheduled_for,
            last_status=endpoint.last_status,
            failure_count=endpoint.failure_count,
            success_streak=endpoint.success_streak,
            running=endpoint.lease is not None and endpoint.lease.until > now,
            in_flight=endpoint.in_flight,
        ),
        hints=active_hints(endpoint, now),
    )


def active_hints(endpoint: Endpoint, now: datetime) -> ActiveHints:
    hint, pause = endpoint.interval_hint, endpoint.pause
    return ActiveHints(
        interval=(
            IntervalHintOut(
                interval_seconds=hint.interval.total_seconds(),
                expires_at=hint.expires_at,
                reason=hint.reason,
                actor=ActorOut.of(hint.actor),
            )
            if hint is not None and hint.fresh(now)
            else None
        ),
        one_shots=[OneShotOut.of(shot) for shot in endpoint.one_shots if shot.fresh(now)],
        pause=(
            PauseOut(until=pause.until, reason=pause.reason, actor=ActorOut.of(pause.actor))
            if pause is not None and pause.active(now)
            else None
        ),
    )
