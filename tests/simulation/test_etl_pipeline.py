"""ETL: each step runs after its upstream succeeded; a rate limit is waited out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cadenza.simulation import Mode, SimulationResult, load_scenario

from .replays import SEEDS, replay

NAME = "etl-pipeline"
SCENARIO = load_scenario(NAME)
CHAIN = (
    ("fetch_salesforce_data", "clean_customer_records"),
    ("fetch_stripe_transactions", "enrich_transactions"),
    ("enrich_transactions", "load_to_warehouse"),
    ("load_to_warehouse", "validate_data_quality"),
    ("fetch_analytics_events", "aggregate_events"),
)


def _each_follows_a_fresh_upstream(result: SimulationResult, up: str, down: str) -> bool:
    previous = None
    for run in result.runs_of(down):
        fresh = [
            u
            for u in result.runs_of(up)
            if u.ok
            and u.finished_at <= run.started_at
            and (previous is None or u.started_at > previous)
        ]
        if not fresh:
            return False
        previous = run.started_at
    return True


@pytest.mark.parametrize("seed", SEEDS)
def test_every_downstream_step_follows_a_new_successful_upstream_run(seed: int) -> None:
    result = replay(NAME, seed=seed)
    for up, down in CHAIN:
        assert result.runs_of(down), f"{down} never ran"
        assert _each_follows_a_fresh_upstream(result, up, down), f"{down} ran without {up}"


def test_the_rate_limited_extraction_waits_exactly_as_asked_static_too() -> None:
    result = replay(NAME)
    pause = result.changes_to("fetch_analytics_events", "pause_endpoint")
    assert len(pause) == 1
    assert pause[0].actor == "planner"
    assert result.figures.retry_after_violations == 0
    # #16.4: Retry-After is honoured by default, with or without a planner.
    assert replay(NAME, Mode.STATIC).figures.retry_after_violations == 0
    limited = [r for r in result.runs_of("fetch_analytics_events") if not r.ok]
    assert len(limited) == 1


def test_pipeline_lag_is_seen_within_one_tightened_interval() -> None:
    adaptive = replay(NAME).figures.detection_delay
    static = replay(NAME, Mode.STATIC).figures.detection_delay
    tight = timedelta(seconds=SCENARIO.endpoint("check_pipeline_lag").tight_interval_seconds)
    assert adaptive is not None
    assert static is not None
    assert adaptive <= tight < static


def test_no_guardrail_is_crossed_and_no_failure_alert_is_needed() -> None:
    result = replay(NAME)
    assert (result.figures.cooldown_violations, result.figures.clamp_violations) == (0, 0)
    assert result.runs_of("alert_on_failures") == []
