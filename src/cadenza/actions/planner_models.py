"""Wire models of the planner's settings: rules, conditions, steps and policies.

Each model converts to the domain entity (``to_domain``, where the constructors
enforce invariants) and back (``of``). The same JSON is what stores persist, so a
rule reads the same on REST, MCP, the CLI and in the database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from cadenza.actions.wire import Input, Output, duration, seconds
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import RunStatus
from cadenza.domain.planning import (
    MAX_RULE_WINDOW,
    MAX_RULES,
    MAX_STEPS_PER_RULE,
    AdaptivePolling,
    EndpointPlanner,
    Metric,
    MetricCompare,
    OutcomeIs,
    PlannerKind,
    Policies,
    ResponseChange,
    ResponseMatches,
    Rule,
    SiblingLatest,
    Step,
    TightenOnFailures,
    Verb,
)

Window = Annotated[int, Field(ge=1, le=MAX_RULE_WINDOW)]
Pointer = Annotated[str | None, Field(None, max_length=500, description="RFC 6901 JSON Pointer.")]
Seconds = Annotated[float, Field(ge=0, le=400 * 86400)]


class OutcomeIn(Input):
    kind: Literal["outcome"]
    statuses: list[RunStatus] = Field(min_length=1, description="Any of these run statuses.")

    def to_domain(self) -> OutcomeIs:
        return OutcomeIs(frozenset(self.statuses))


class MetricIn(Input):
    kind: Literal["metric"]
    metric: Metric
    op: Literal["eq", "ne", "lt", "le", "gt", "ge"]
    value: float

    def to_domain(self) -> MetricCompare:
        return MetricCompare(self.metric, Op(self.op), self.value)


class ResponseIn(Input):
    kind: Literal["response"]
    op: Op
    value: Any = None
    json_pointer: Pointer = None

    def to_domain(self) -> ResponseMatches:
        return ResponseMatches(Comparison(self.op, self.value, self.json_pointer))


class ResponseChangeIn(Input):
    kind: Literal["response_change"]
    changed: bool = Field(description="true: changed within the window; false: stayed the same.")
    runs: Window = 1
    json_pointer: Pointer = None

    def to_domain(self) -> ResponseChange:
        return ResponseChange(self.changed, self.runs, self.json_pointer)


OwnCondition = Annotated[
    OutcomeIn | MetricIn | ResponseIn | ResponseChangeIn, Field(discriminator="kind")
]


class SiblingIn(Input):
    kind: Literal["sibling"]
    sibling: str = Field(min_length=1, max_length=200, description="A sibling endpoint's name.")
    condition: OwnCondition

    def to_domain(self) -> SiblingLatest:
        return SiblingLatest(self.sibling, self.condition.to_domain())


ConditionIn = Annotated[
    OutcomeIn | MetricIn | ResponseIn | ResponseChangeIn | SiblingIn,
    Field(discriminator="kind"),
]


class StepIn(Input):
    verb: Verb
    target: str | None = Field(None, max_length=200, description="A sibling's name; null: self.")
    interval_seconds: Seconds | None = None
    ttl_seconds: Seconds | None = None
    delay_seconds: Seconds | None = Field(
        None, description="One-shot: run this far ahead. Pause: this long."
    )

    def to_domain(self) -> Step:
        return Step(
            self.verb,
            self.target,
            duration(self.interval_seconds),
            duration(self.ttl_seconds),
            duration(self.delay_seconds),
        )

    @classmethod
    def of(cls, step: Step) -> StepIn:
        return cls(
            verb=step.verb,
            target=step.target,
            interval_seconds=seconds(step.interval),
            ttl_seconds=seconds(step.ttl),
            delay_seconds=seconds(step.delay),
        )


class RuleIn(Input):
    name: str = Field(min_length=1, max_length=200)
    when: list[ConditionIn] = Field(min_length=1, max_length=20)
    then: list[StepIn] = Field(min_length=1, max_length=MAX_STEPS_PER_RULE)
    for_runs: Window = Field(1, description="Conditions must hold on this many runs in a row.")
    cooldown_seconds: Seconds = Field(0, description="Do not fire again within this time.")

    def to_domain(self) -> Rule:
        return Rule(
            self.name,
            tuple(c.to_domain() for c in self.when),
            tuple(s.to_domain() for s in self.then),
            self.for_runs,
            timedelta(seconds=self.cooldown_seconds),
        )

    @classmethod
    def of(cls, rule: Rule) -> RuleIn:
        return cls(
            name=rule.name,
            when=[condition_in(c) for c in rule.when],
            then=[StepIn.of(s) for s in rule.then],
            for_runs=rule.for_runs,
            cooldown_seconds=rule.cooldown.total_seconds(),
        )


def _own_in(c: OutcomeIs | MetricCompare | ResponseMatches | ResponseChange) -> Any:
    if isinstance(c, OutcomeIs):
        return OutcomeIn(kind="outcome", statuses=sorted(c.statuses))
    if isinstance(c, MetricCompare):
        return MetricIn(kind="metric", metric=c.metric, op=c.op.value, value=c.value)
    if isinstance(c, ResponseMatches):
        comp = c.comparison
        return ResponseIn(
            kind="response", op=comp.op, value=comp.value, json_pointer=comp.json_pointer
        )
    return ResponseChangeIn(
        kind="response_change", changed=c.changed, runs=c.runs, json_pointer=c.json_pointer
    )


def condition_in(c: Any) -> Any:
    if isinstance(c, SiblingLatest):
        return SiblingIn(kind="sibling", sibling=c.sibling, condition=_own_in(c.condition))
    return _own_in(c)


class AdaptivePollingIn(Input):
    unchanged_runs: Window = 3
    factor: float = Field(2.0, gt=1, le=10)
    json_pointer: Pointer = None


class TightenIn(Input):
    streak: Window = 3
    interval_seconds: Seconds | None = Field(None, description="Default: the min_interval.")
    ttl_seconds: Seconds = 1800
    recover_after: Window = 2


class PoliciesIn(Input):
    adaptive_polling: AdaptivePollingIn | None = Field(
        None, description="Relax toward max_interval while responses stay unchanged."
    )
    honour_retry_after: bool = Field(False, description="Pause on 429/503 per Retry-After.")
    tighten_on_failures: TightenIn | None = Field(
        None, description="Run at the tight interval after a failure streak."
    )

    def to_domain(self) -> Policies:
        polling = self.adaptive_polling
        tighten = self.tighten_on_failures
        return Policies(
            adaptive_polling=None
            if polling is None
            else AdaptivePolling(polling.unchanged_runs, polling.factor, polling.json_pointer),
            honour_retry_after=self.honour_retry_after,
            tighten_on_failures=None
            if tighten is None
            else TightenOnFailures(
                tighten.streak,
                duration(tighten.interval_seconds),
                timedelta(seconds=tighten.ttl_seconds),
                tighten.recover_after,
            ),
        )

    @classmethod
    def of(cls, p: Policies) -> PoliciesIn:
        polling, tighten = p.adaptive_polling, p.tighten_on_failures
        return cls(
            adaptive_polling=None
            if polling is None
            else AdaptivePollingIn(
                unchanged_runs=polling.unchanged_runs,
                factor=polling.factor,
                json_pointer=polling.json_pointer,
            ),
            honour_retry_after=p.honour_retry_after,
            tighten_on_failures=None
            if tighten is None
            else TightenIn(
                streak=tighten.streak,
                interval_seconds=seconds(tighten.interval),
                ttl_seconds=tighten.ttl.total_seconds(),
                recover_after=tighten.recover_after,
            ),
        )


class PlannerSettingsIn(Input):
    """The planner's settings for one endpoint (the document stores persist)."""

    kind: PlannerKind = Field(PlannerKind.RULES, description="rules (default) or llm.")
    approval: bool = Field(False, description="Proposals wait for a person's decision.")
    rules: list[RuleIn] = Field(default_factory=list, max_length=MAX_RULES)
    policies: PoliciesIn = Field(default_factory=PoliciesIn)

    def to_domain(self, tenant_id: str, endpoint_id: str) -> EndpointPlanner:
        return EndpointPlanner(
            tenant_id,
            endpoint_id,
            self.kind,
            self.approval,
            tuple(r.to_domain() for r in self.rules),
            self.policies.to_domain(),
        )

    @classmethod
    def of(cls, config: EndpointPlanner) -> PlannerSettingsIn:
        return cls(
            kind=config.kind,
            approval=config.approval,
            rules=[RuleIn.of(r) for r in config.rules],
            policies=PoliciesIn.of(config.policies),
        )


class PlannerSettingsOut(Output):
    endpoint_id: str
    settings: PlannerSettingsIn
