"""The planner store's own settings document: every rule shape round-trips, and the
documents stored before it had its own format (the API model's JSON) read back."""

from __future__ import annotations

from datetime import timedelta

from cadenza.actions.planner_models import PlannerSettingsIn
from cadenza.adapters.store.documents import planner_doc, planner_from
from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import RunStatus
from cadenza.domain.planning import (
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

SETTINGS = EndpointPlanner(
    "usr_1",
    "end_a",
    kind=PlannerKind.LLM,
    approval=True,
    rules=(
        Rule(
            "every condition",
            (
                OutcomeIs(frozenset({RunStatus.FAILURE, RunStatus.TIMEOUT})),
                MetricCompare(Metric.DURATION_SECONDS, Op.GE, 2.5),
                ResponseMatches(Comparison(Op.EQ, {"ok": False}, "/status")),
                ResponseChange(changed=False, runs=3, json_pointer="/items"),
                SiblingLatest("db", OutcomeIs(frozenset({RunStatus.SUCCESS}))),
            ),
            (
                Step(Verb.INTERVAL_HINT, interval=timedelta(seconds=5), ttl=timedelta(hours=1)),
                Step(Verb.ONE_SHOT, target="db", delay=timedelta(seconds=30)),
                Step(Verb.PAUSE, delay=timedelta(minutes=10)),
                Step(Verb.CLEAR_HINTS),
            ),
            for_runs=2,
            cooldown=timedelta(minutes=5),
        ),
    ),
    policies=Policies(
        adaptive_polling=AdaptivePolling(4, 1.5, "/etag"),
        honour_retry_after=True,
        tighten_on_failures=TightenOnFailures(2, timedelta(seconds=20), timedelta(hours=2), 3),
    ),
)


def test_every_rule_shape_and_policy_round_trips() -> None:
    assert planner_from("usr_1", "end_a", planner_doc(SETTINGS)) == SETTINGS
    default = EndpointPlanner("usr_1", "end_b")
    assert planner_from("usr_1", "end_b", planner_doc(default)) == default


def test_documents_written_as_the_api_model_read_back_unchanged() -> None:
    """Rows stored while the store saved ``PlannerSettingsIn`` need no migration."""
    legacy = PlannerSettingsIn.of(SETTINGS).model_dump_json()
    assert planner_from("usr_1", "end_a", legacy) == SETTINGS
