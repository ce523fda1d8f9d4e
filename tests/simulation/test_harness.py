"""The harness: deterministic, fast, offline, and driving Cadenza's real parts."""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cadenza import ids
from cadenza.actions import PLANNER_TOOLS
from cadenza.domain.model import Endpoint
from cadenza.ports import DispatchResult
from cadenza.simulation import (
    Mode,
    load_scenario,
    run_scenario,
    scenario_names,
    simulate,
)
from cadenza.simulation.command import compare
from cadenza.simulation.harness import WORKER, ReplayFailed
from cadenza.simulation.report import render
from cadenza.simulation.summary import summary_text
from cadenza.simulation.world import SimulatedTargets
from cadenza.testing import EgressGuard

from .replays import replay

SIX = (
    "content-publishing",
    "devops-remediation",
    "etl-pipeline",
    "flash-sale",
    "saas-billing",
    "web-scraping",
)


def test_there_is_one_bundled_scenario_per_seed_use_case() -> None:
    assert tuple(scenario_names()) == SIX
    use_cases = {load_scenario(name).use_case for name in SIX}
    assert len(use_cases) == 6


def test_an_unknown_scenario_names_the_ones_that_exist() -> None:
    with pytest.raises(KeyError, match="flash-sale"):
        load_scenario("black-friday")


@pytest.mark.parametrize("name", SIX)
def test_the_same_seed_gives_a_byte_identical_summary_and_report(name: str) -> None:
    first = compare(name, 11)
    second = compare(name, 11)
    assert summary_text(first) == summary_text(second)
    assert render(first) == render(second)


def test_another_seed_changes_the_readings_but_not_the_story() -> None:
    one = replay("flash-sale", seed=1)
    other = replay("flash-sale", seed=42)
    assert [r.body for r in one.runs] != [r.body for r in other.runs]
    assert [c.action for c in one.changes] == [c.action for c in other.changes]


@pytest.mark.parametrize("name", SIX)
def test_each_forty_minute_scenario_replays_all_three_ways(name: str) -> None:
    assert load_scenario(name).duration_minutes == 40
    for mode in Mode:
        result = replay(name, mode)
        assert result.mode is mode
        assert result.runs


def test_a_replay_gives_the_same_summary_in_another_process_with_other_hash_seeds(
    tmp_path: Path,
) -> None:
    """Set and dict orders of strings change with the hash seed between processes; no
    part of a replay may depend on them."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    command = [sys.executable, "-m", "cadenza.cli", "sim", "etl-pipeline", "--seed", "4"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    here = summary_text(compare("etl-pipeline", 4))
    assert (tmp_path / "summary.json").read_text(encoding="utf-8") == here


def test_a_replay_opens_no_network_connection() -> None:
    with EgressGuard() as guard:
        result = simulate(load_scenario("devops-remediation"), Mode.ADAPTIVE, 5)
    assert result.figures.calls > 0
    assert (guard.connects, guard.violations) == ([], [])


def test_run_scenario_replays_statically_or_adaptively() -> None:
    static = run_scenario("saas-billing", adaptive=False, seed=2)
    adaptive = run_scenario("saas-billing", adaptive=True, seed=2)
    assert (static.mode, adaptive.mode) == (Mode.STATIC, Mode.ADAPTIVE)
    assert static.changes == ()
    assert adaptive.figures.hints > 0


def test_the_planner_changes_schedules_only_through_its_catalogue_tools() -> None:
    tools = {a.name for a in PLANNER_TOOLS}
    verbs = {"apply_interval_hint", "schedule_one_shot_run", "clear_adaptive_hints"}
    for name in SIX:
        for change in replay(name).changes:
            assert change.actor in ("planner", "user")
            if change.actor == "planner":
                assert change.action in verbs | {"pause_endpoint", "resume_endpoint"}
    assert verbs | {"pause_or_resume_endpoint"} <= tools


def test_runs_start_exactly_at_their_slot_as_the_scheduler_starts_them() -> None:
    result = replay("flash-sale")
    assert all(r.started_at == r.scheduled_for for r in result.runs)
    assert all(r.finished_at > r.started_at for r in result.runs)


def test_ids_draw_from_a_seeded_source_only_inside_the_context() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with ids.random_bits_from(random.Random(3).getrandbits):
        first = ids.new_id("run", at)
    with ids.random_bits_from(random.Random(3).getrandbits):
        again = ids.new_id("run", at)
    assert first == again
    assert ids.new_id("run", at) != ids.new_id("run", at)


@pytest.mark.slow
def test_a_replay_on_sqlite_matches_the_in_memory_replay_run_for_run(tmp_path: Path) -> None:
    scenario = load_scenario("content-publishing")
    on_disk = simulate(scenario, Mode.ADAPTIVE, 3, database=tmp_path / "sim.db")
    in_memory = simulate(scenario, Mode.ADAPTIVE, 3)
    assert on_disk.runs == in_memory.runs
    assert on_disk.changes == in_memory.changes
    assert on_disk.figures == in_memory.figures
    with contextlib.closing(sqlite3.connect(tmp_path / "sim.db")) as db:
        recorded_by = db.execute("SELECT DISTINCT worker_id FROM runs").fetchall()
        still_registered = db.execute("SELECT count(*) FROM workers").fetchone()
    assert recorded_by == [(WORKER,)]
    assert still_registered == (0,)


def test_a_worker_that_logs_an_error_fails_the_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker survives a crashing dispatcher (it records the run as an error); the
    replay, being a test of the worker, does not."""
    real = SimulatedTargets.dispatch

    async def crash_on_the_page(
        self: SimulatedTargets, endpoint: Endpoint, scheduled_for: datetime
    ) -> DispatchResult:
        if endpoint.name == "slack_operations":
            raise ConnectionResetError("Slack is down")
        return await real(self, endpoint, scheduled_for)

    monkeypatch.setattr(SimulatedTargets, "dispatch", crash_on_the_page)
    with pytest.raises(ReplayFailed, match=r"dispatch\.crashed"):
        simulate(load_scenario("flash-sale"), Mode.STATIC_TIGHT, 1)


def test_a_sqlite_replay_refuses_a_database_that_already_has_a_history(tmp_path: Path) -> None:
    used = tmp_path / "used.db"
    used.write_bytes(b"")
    with pytest.raises(FileExistsError):
        simulate(load_scenario("saas-billing"), Mode.STATIC, 1, database=used)
