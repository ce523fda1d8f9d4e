"""The default planner: the endpoint's rules and opted-in policies, no model needed."""

from __future__ import annotations

from cadenza.domain.planning import PlannerKind, ToolCall
from cadenza.planner.policies import policy_intents
from cadenza.planner.port import Analysis, Intent, Observation, Sink
from cadenza.planner.rules import evaluate


class RulesPlanner:
    """Deterministic: policies first (they react to the protocol, e.g. 429), then the
    endpoint's rules in order. Each intent goes to the sink, which clamps it and holds
    back what is already in force. It asks for no timed re-analysis: rules react to
    runs and sibling changes only."""

    @property
    def kind(self) -> PlannerKind:
        return PlannerKind.RULES

    @property
    def model_name(self) -> str:
        return ""

    async def analyse(self, obs: Observation, sink: Sink) -> Analysis:
        result = evaluate(obs)
        intents: list[Intent] = [*policy_intents(obs), *result.intents]
        calls: list[ToolCall] = []
        for intent in intents:
            verdict = await sink.submit(intent)
            calls.append(ToolCall(intent.origin, _describe(intent), verdict.status))
        applied = sum(1 for c in calls if c.outcome in ("applied", "pending"))
        summary = (
            f"{len(result.fired)} rule(s) fired; {len(intents)} proposal(s), "
            f"{applied} applied or pending."
        )
        return Analysis(summary=summary, fired=result.fired, tool_calls=tuple(calls))


def _describe(intent: Intent) -> dict[str, object]:
    described: dict[str, object] = {"verb": intent.verb.value, "target": intent.target}
    if intent.interval is not None:
        described["interval_seconds"] = intent.interval.total_seconds()
    if intent.ttl is not None:
        described["ttl_seconds"] = intent.ttl.total_seconds()
    if intent.at is not None:
        described["at"] = intent.at.isoformat()
    return described
