"""Billing: warn before throttling, throttle once, respect the warning cooldown."""

from __future__ import annotations

from datetime import timedelta

from cadenza.simulation import Mode, load_scenario

from .replays import replay

NAME = "saas-billing"
SCENARIO = load_scenario(NAME)
EXCEEDED = SCENARIO.at(SCENARIO.incidents[0].start_minute)
MIDNIGHT = SCENARIO.at(35)


def test_the_customer_is_warned_before_it_is_throttled_once_after_the_quota_is_exceeded() -> None:
    result = replay(NAME)
    warnings = result.runs_of("send_quota_warning")
    throttles = result.runs_of("throttle_api_access")
    assert len(throttles) == 1
    assert throttles[0].started_at > EXCEEDED
    assert warnings[0].started_at < EXCEEDED
    assert len(warnings) == 2


def test_the_second_warning_waits_for_the_warning_cooldown() -> None:
    result = replay(NAME)
    first, second = (r.started_at for r in result.runs_of("send_quota_warning"))
    assert second - first >= timedelta(seconds=600)
    assert result.figures.cooldown_violations == 0


def test_exceeding_the_quota_is_seen_within_one_tightened_interval() -> None:
    adaptive = replay(NAME).figures.detection_delay
    static = replay(NAME, Mode.STATIC).figures.detection_delay
    assert adaptive is not None
    assert static is not None
    assert adaptive <= timedelta(minutes=1) < static


def test_invoices_and_storage_run_at_midnight_on_cron_untouched_by_the_planner() -> None:
    result = replay(NAME)
    for name in ("generate_invoices", "measure_storage_usage", "aggregate_api_calls"):
        runs = result.runs_of(name)
        assert [r.started_at for r in runs] == [MIDNIGHT]
        assert runs[0].source == "baseline-cron"
        assert result.changes_to(name) == []
