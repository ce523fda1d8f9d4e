"""``plan_next_run(..., explain=False)``: the same plan, without the explanation.

Checked over the governor's example tables and its random scenes.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from domain_builders import T0, make_job
from hypothesis import given
from test_governor import EARLY_SOURCES, LATE_SOURCES, SOURCES, WOULD_RUN_NOW
from test_governor_properties import BOUNDED, Scene, scenes

from cadenza.domain.governor import plan_next_run
from cadenza.domain.model import Endpoint, Job


def _assert_same_plan(now: datetime, endpoint: Endpoint, job: Job) -> None:
    explained = plan_next_run(now, endpoint, job)
    quiet = plan_next_run(now, endpoint, job, explain=False)
    assert (quiet.next_run_at, quiet.source) == (explained.next_run_at, explained.source)
    assert quiet.explanation == ()
    assert explained.explanation


@pytest.mark.parametrize(("endpoint", "job", "_expected", "_source"), SOURCES)
def test_each_source_plans_the_same_without_explanation(
    endpoint: Endpoint, job: Job, _expected: object, _source: object
) -> None:
    _assert_same_plan(T0, endpoint, job)


@pytest.mark.parametrize("endpoint", EARLY_SOURCES + LATE_SOURCES + WOULD_RUN_NOW)
def test_clamped_and_due_sources_plan_the_same_without_explanation(endpoint: Endpoint) -> None:
    _assert_same_plan(T0, endpoint, make_job())


@BOUNDED
@given(scenes())
def test_random_scenes_plan_the_same_without_explanation(scene: Scene) -> None:
    _assert_same_plan(scene.now, scene.endpoint, scene.job)
