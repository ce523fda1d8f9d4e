"""The alert conditions, pure: when a rule's breach holds and when it clears."""

from __future__ import annotations

from datetime import timedelta

import pytest
from domain_builders import T0, make_endpoint, minutes, pause

from cadenza.domain import errors
from cadenza.domain.alerts import (
    AlertRule,
    Channel,
    ChannelKind,
    Incident,
    RuleKind,
    endpoint_breach,
)
from cadenza.domain.model import RunStatus

OK, FAIL = RunStatus.SUCCESS, RunStatus.FAILURE


def rule(kind: RuleKind, **fields: object) -> AlertRule:
    return AlertRule("alr_1", "t1", "r", kind, T0, **fields)  # type: ignore[arg-type]


def test_consecutive_failures_open_at_the_threshold_and_hold_until_a_success() -> None:
    failing = rule(RuleKind.CONSECUTIVE_FAILURES, failures=3)
    two = make_endpoint(failure_count=2, last_status=FAIL)
    three = make_endpoint(failure_count=3, last_status=FAIL)
    assert endpoint_breach(failing, two, T0, incident_open=False) is None
    breach = endpoint_breach(failing, three, T0, incident_open=False)
    assert breach is not None
    assert "3 failures in a row" in breach.detail
    assert endpoint_breach(failing, make_endpoint(failure_count=1), T0, incident_open=True)
    assert endpoint_breach(failing, make_endpoint(failure_count=0), T0, incident_open=True) is None


def test_a_success_rate_below_the_threshold_breaches_and_no_runs_say_nothing() -> None:
    low = rule(RuleKind.SUCCESS_RATE, min_success_rate=0.8)
    endpoint = make_endpoint()
    assert endpoint_breach(low, endpoint, T0, incident_open=False, recent=()) is None
    assert (
        endpoint_breach(low, endpoint, T0, incident_open=False, recent=(OK,) * 8 + (FAIL,) * 2)
        is None
    )
    breach = endpoint_breach(low, endpoint, T0, incident_open=False, recent=(OK, OK, FAIL))
    assert breach is not None
    assert "67%" in breach.detail


def test_a_run_late_beyond_the_tolerance_breaches_unless_paused() -> None:
    late = rule(RuleKind.NO_RUN, late_after=minutes(5))
    due = make_endpoint(next_run_at=T0)
    assert endpoint_breach(late, due, T0 + minutes(5), incident_open=False) is None
    assert endpoint_breach(late, due, T0 + minutes(6), incident_open=False) is not None
    held = make_endpoint(next_run_at=T0, pause=pause(None))
    assert endpoint_breach(late, held, T0 + minutes(60), incident_open=False) is None


def test_a_reminder_is_due_only_after_its_interval_and_only_while_open() -> None:
    hourly = rule(RuleKind.NO_RUN, renotify_every=timedelta(hours=1))
    incident = Incident("inc_1", "t1", "alr_1", "ep", "t", "d", T0, T0)
    assert not incident.reminder_due(hourly, T0 + minutes(59))
    assert incident.reminder_due(hourly, T0 + minutes(60))
    assert not incident.reminder_due(rule(RuleKind.NO_RUN), T0 + minutes(600))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"failures": 0}, "failures"),
        ({"min_success_rate": 1.5}, "min_success_rate"),
        ({"renotify_every": timedelta(seconds=5)}, "renotify_every_seconds"),
    ],
)
def test_a_rule_out_of_bounds_is_refused_naming_its_field(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        rule(RuleKind.CONSECUTIVE_FAILURES, **fields)
    assert refused.value.field == field


def test_a_channel_without_what_its_kind_needs_is_refused() -> None:
    with pytest.raises(errors.ValidationError):
        Channel("c", "t1", "n", ChannelKind.EMAIL, T0, smtp_host="smtp.example.com")
    with pytest.raises(errors.ValidationError):
        Channel("c", "t1", "n", ChannelKind.SLACK, T0)
    slack = Channel("c", "t1", "n", ChannelKind.SLACK, T0, secret="https://hooks.slack.com/x")
    assert slack.target_url == "https://hooks.slack.com/x"
