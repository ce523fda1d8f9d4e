"""The flash sale replays the seed's story (flash-sale-scenario: 10 endpoints, 4 tiers)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cadenza.simulation import Mode, load_scenario, simulate
from cadenza.simulation.world import base_value

from .replays import SEEDS, replay

NAME = "flash-sale"
SCENARIO = load_scenario(NAME)
SURGE = SCENARIO.at(5)
DEGRADED = SCENARIO.at(SCENARIO.incidents[0].start_minute)
RECOVERY = ("cache_warm_up", "scale_checkout_workers")
INVESTIGATION = ("slow_page_analyzer", "database_query_trace")


def test_the_scenario_has_ten_endpoints_in_four_tiers_over_forty_minutes_with_a_5x_surge() -> None:
    tiers = {e.tier for e in SCENARIO.endpoints}
    traffic = SCENARIO.signals["visitors_per_min"]
    assert len(SCENARIO.endpoints) == 10
    assert tiers == {"health", "investigation", "recovery", "alert"}
    assert SCENARIO.duration_minutes == 40
    assert base_value(traffic, 5) / base_value(traffic, 4.9) == 5


@pytest.mark.parametrize("seed", SEEDS)
def test_the_traffic_monitor_tightens_within_one_minute_of_the_surge(seed: int) -> None:
    result = replay(NAME, seed=seed)
    hints = result.changes_to("traffic_monitor", "apply_interval_hint")
    assert hints[0].actor == "planner"
    assert SURGE <= hints[0].at <= SURGE + timedelta(minutes=1)
    assert hints[0].details["interval_seconds"] == 30


@pytest.mark.parametrize("seed", SEEDS)
def test_investigation_endpoints_wake_only_after_health_degrades(seed: int) -> None:
    result = replay(NAME, seed=seed)
    for name in INVESTIGATION:
        runs = result.runs_of(name)
        resumes = result.changes_to(name, "resume_endpoint")
        assert runs, f"{name} never woke"
        assert runs[0].started_at >= DEGRADED
        assert resumes
        assert resumes[0].at >= DEGRADED
        assert resumes[0].actor == "planner"
    assert not any(replay(NAME, Mode.STATIC, seed).runs_of(n) for n in INVESTIGATION)


@pytest.mark.parametrize("seed", SEEDS)
def test_recovery_fires_before_any_page_and_the_page_never_fires_when_it_succeeds(
    seed: int,
) -> None:
    result = replay(NAME, seed=seed)
    first_recovery = min(r.started_at for name in RECOVERY for r in result.runs_of(name))
    pages = [r for r in result.runs if r.tier == "alert" and r.endpoint != "slack_operations"]
    assert all(first_recovery < page.started_at for page in pages)
    assert result.runs_of("emergency_oncall_page") == []
    assert [r.endpoint for r in result.runs if r.tier == "recovery"] == list(RECOVERY)


def test_the_emergency_page_fires_once_after_both_recoveries_when_recovery_fails() -> None:
    broken = SCENARIO.model_copy(update={"effects": []})
    result = simulate(broken, Mode.ADAPTIVE, 7)
    pages = result.runs_of("emergency_oncall_page")
    assert len(pages) == 1
    for name in RECOVERY:
        assert result.runs_of(name)[0].started_at < pages[0].started_at


@pytest.mark.parametrize("mode", list(Mode))
def test_no_mode_violates_a_cooldown_or_a_clamp(mode: Mode) -> None:
    figures = replay(NAME, mode).figures
    assert (figures.cooldown_violations, figures.clamp_violations) == (0, 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_adaptive_detection_delay_is_at_most_one_tightened_interval(seed: int) -> None:
    adaptive = replay(NAME, seed=seed).figures.detection_delay
    static = replay(NAME, Mode.STATIC, seed).figures.detection_delay
    tight = timedelta(seconds=SCENARIO.endpoint("traffic_monitor").tight_interval_seconds)
    assert adaptive is not None
    assert static is not None
    assert adaptive <= tight < static


@pytest.mark.parametrize("seed", SEEDS)
def test_adaptive_calls_are_at_most_40_percent_of_a_static_tight_schedule(seed: int) -> None:
    adaptive = replay(NAME, seed=seed).figures.calls
    tight = replay(NAME, Mode.STATIC_TIGHT, seed).figures.calls
    assert adaptive <= 0.4 * tight


def test_operations_hears_once_at_the_surge_and_support_once_while_scaling_bites() -> None:
    result = replay(NAME)
    ops = result.runs_of("slack_operations")
    support = result.runs_of("slack_customer_support")
    scaled = result.runs_of("scale_checkout_workers")[0].started_at
    assert len(ops) == 1
    assert SURGE <= ops[0].started_at <= SURGE + timedelta(minutes=1)
    assert len(support) == 1
    assert support[0].started_at > scaled


def test_monitors_relax_and_investigators_sleep_once_traffic_is_back_to_normal() -> None:
    result = replay(NAME)
    last = result.changes_to("traffic_monitor")[-1]
    late = [r for r in result.runs if r.tier == "health" and r.started_at >= SCENARIO.at(30)]
    assert (last.action, last.actor) == ("clear_adaptive_hints", "planner")
    assert late
    assert {r.source for r in late} == {"baseline-interval"}
    for name in INVESTIGATION:
        assert result.changes_to(name)[-1].action == "pause_endpoint"
