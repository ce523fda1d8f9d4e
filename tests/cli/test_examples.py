"""The example manifests: each applies cleanly (and a second time changes nothing), and
each describes the same endpoints and planner rules as its seed scenario, so the demo
target's story drives the rules that the simulation shows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_kit import Tenant

from cadenza.actions.endpoint_models import BaselineSpec
from cadenza.actions.manifest_models import Manifest
from cadenza.actions.planner_models import PlannerSettingsIn
from cadenza.simulation.scenario import load_scenario, scenario_names

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_there_is_one_example_per_seed_scenario() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == scenario_names()


@pytest.mark.parametrize("name", scenario_names())
def test_an_example_describes_its_scenarios_endpoints_and_rules(name: str) -> None:
    scenario = load_scenario(name)
    manifest = Manifest.model_validate(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()))
    (job,) = manifest.jobs
    assert job.name == scenario.job_name
    assert [e.name for e in job.endpoints] == [e.name for e in scenario.endpoints]
    for spec, endpoint in zip(scenario.endpoints, job.endpoints, strict=True):
        assert endpoint.request.url.endswith(f"/{name}{spec.path}")
        assert endpoint.request.method.value == spec.method
        assert endpoint.start_paused == spec.asleep
        assert endpoint.min_interval_seconds == spec.min_interval_seconds
        # The recovery and alert tiers are on demand (no baseline) in both.
        baseline = None if spec.baseline is None else BaselineSpec.model_validate(spec.baseline)
        assert endpoint.baseline == baseline
        wanted = None if spec.planner is None else PlannerSettingsIn.model_validate(spec.planner)
        assert endpoint.planner == wanted


@pytest.mark.slow
@pytest.mark.parametrize("name", scenario_names())
def test_every_example_applies_cleanly_and_a_second_time_changes_nothing(
    tenant: Tenant, name: str
) -> None:
    path = str(EXAMPLES / f"{name}.yaml")
    first = tenant.json("apply", "-f", path, DEMO_TARGET=tenant.server.target)
    assert first["created"] > 1
    again = tenant.json("apply", "-f", path, DEMO_TARGET=tenant.server.target)
    assert again["changes"] == []
