"""``model.evolve`` and ``model.endpoint_from``: exactly ``dataclasses.replace`` and the
constructor for an endpoint, checks included."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from domain_builders import at, interval_hint, make_endpoint, minutes, one_shot, pause

from cadenza.domain import errors
from cadenza.domain.model import Endpoint, Lease, PlanSource, RunStatus, endpoint_from, evolve

_CHANGES: list[dict[str, Any]] = [
    {},
    {"next_run_at": at(5), "next_run_source": PlanSource.HINT_ONE_SHOT},
    {"next_run_at": None, "next_run_source": PlanSource.PAUSED},
    {
        "one_shots": (),
        "last_run_at": at(1),
        "last_scheduled_for": at(0),
        "last_status": RunStatus.FAILURE,
        "failure_count": 3,
        "success_streak": 0,
        "attempt": 1,
        "lease": None,
    },
    {"interval_hint": interval_hint(minutes(2), at(30)), "one_shots": (one_shot(at(4)),)},
    {"pause": pause(None, "maintenance"), "lease": Lease("w1", at(2), 7)},
    {"name": "renamed", "jitter": timedelta(seconds=30), "tier": "gold"},
]


@pytest.mark.parametrize("changes", _CHANGES)
def test_evolve_equals_replace(changes: dict[str, Any]) -> None:
    endpoint = make_endpoint(
        one_shots=(one_shot(at(3)),), lease=Lease("w0", at(1), 2), next_run_at=at(0)
    )
    evolved = evolve(endpoint, **changes)
    assert evolved == dataclasses.replace(endpoint, **changes)
    assert type(evolved) is Endpoint
    assert evolved is not endpoint


def test_evolve_leaves_the_original_unchanged() -> None:
    endpoint = make_endpoint(next_run_at=at(0))
    before = dataclasses.replace(endpoint)
    evolve(endpoint, next_run_at=at(9), failure_count=4)
    assert endpoint == before


@pytest.mark.parametrize(
    "changes", [{"name": " "}, {"jitter": timedelta(days=30)}, {"jitter": timedelta(-1)}]
)
def test_evolve_checks_the_copy_as_the_constructor_does(changes: dict[str, Any]) -> None:
    endpoint = make_endpoint()
    with pytest.raises(errors.ValidationError) as by_replace:
        dataclasses.replace(endpoint, **changes)
    with pytest.raises(errors.ValidationError) as by_evolve:
        evolve(endpoint, **changes)
    assert str(by_evolve.value) == str(by_replace.value)


def test_evolve_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match="no_such_field"):
        evolve(make_endpoint(), no_such_field=1)


def test_evolve_result_stays_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolve(make_endpoint()).failure_count = 1  # type: ignore[misc]


def test_an_endpoint_built_from_a_dict_needs_every_field() -> None:
    values = vars(make_endpoint()).copy()
    del values["tier"]
    with pytest.raises(TypeError, match="tier"):
        endpoint_from(values)
