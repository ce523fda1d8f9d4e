"""DevOps: remediate before paging, watch closely after the first incident."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cadenza.simulation import Mode, load_scenario, simulate

from .replays import SEEDS, replay

NAME = "devops-remediation"
SCENARIO = load_scenario(NAME)
LEAK = SCENARIO.at(8.25)
POOL = SCENARIO.at(12.167)


@pytest.mark.parametrize("seed", SEEDS)
def test_each_symptom_wakes_its_own_investigation_only_after_it_appears(seed: int) -> None:
    result = replay(NAME, seed=seed)
    assert result.runs_of("trace_distributed_requests")[0].started_at >= LEAK
    assert result.runs_of("profile_memory_usage")[0].started_at >= LEAK
    assert result.runs_of("fetch_slow_query_logs")[0].started_at >= POOL


@pytest.mark.parametrize("seed", SEEDS)
def test_remediation_runs_before_the_team_is_told_and_on_call_is_never_paged(seed: int) -> None:
    result = replay(NAME, seed=seed)
    restart = result.runs_of("restart_unhealthy_pods")
    kill = result.runs_of("kill_long_running_queries")
    assert len(restart) == 1
    assert restart[0].started_at >= LEAK
    assert len(kill) == 1
    assert kill[0].started_at >= POOL
    assert len(result.runs_of("slack_devops_team")) == 1
    assert result.runs_of("pagerduty_oncall") == []


def test_on_call_is_paged_once_when_the_restart_does_not_help() -> None:
    broken = SCENARIO.model_copy(update={"effects": []})
    result = simulate(broken, Mode.ADAPTIVE, 7)
    pages = result.runs_of("pagerduty_oncall")
    assert len(pages) == 1
    assert result.runs_of("restart_unhealthy_pods")[0].started_at < pages[0].started_at


def test_the_pool_saturation_is_seen_within_one_tightened_interval_after_the_first_incident() -> (
    None
):
    adaptive = replay(NAME).figures.detection_delay
    static = replay(NAME, Mode.STATIC).figures.detection_delay
    tight = timedelta(
        seconds=SCENARIO.endpoint("check_database_connections").tight_interval_seconds
    )
    assert adaptive is not None
    assert static is not None
    assert adaptive <= tight < static


def test_recovered_checks_clear_their_hints_and_remediation_keeps_its_cooldowns() -> None:
    result = replay(NAME)
    for name in ("check_error_rate", "check_api_latency"):
        assert result.changes_to(name)[-1].action == "clear_adaptive_hints"
    for mode in Mode:
        figures = replay(NAME, mode).figures
        assert (figures.cooldown_violations, figures.clamp_violations) == (0, 0)
    assert result.figures.calls <= 0.4 * replay(NAME, Mode.STATIC_TIGHT).figures.calls
