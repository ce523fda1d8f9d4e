"""Input parsing shared by every surface: strict about JSON types, and text read by the
schema where input can only be text."""

from __future__ import annotations

from typing import Any

import pytest

from cadenza.actions.endpoints import AddEndpointInput, ListEndpointsInput
from cadenza.actions.hints import PauseEndpointInput
from cadenza.actions.inputs import decode_text, validate_model
from cadenza.actions.jobs import CreateJobInput, ListJobsInput
from cadenza.domain import errors

ENDPOINT = {
    "job_id": "job_1",
    "name": "health",
    "request": {"url": "https://example.com/health"},
    "baseline": {"interval_seconds": 60},
}


@pytest.mark.parametrize(
    ("model", "payload", "field"),
    [
        (ListJobsInput, {"limit": True}, "limit"),
        (ListJobsInput, {"limit": "5"}, "limit"),
        (ListJobsInput, {"limit": 2.5}, "limit"),
        (PauseEndpointInput, {"endpoint_id": "e", "until": 1_893_456_000}, "until"),
        (ListEndpointsInput, {"job_id": "j", "include_archived": 0}, "include_archived"),
        (CreateJobInput, {"name": 7}, "name"),
        (AddEndpointInput, {**ENDPOINT, "baseline": {"interval_seconds": "60"}}, "baseline"),
    ],
    ids=[
        "true for 1",
        "a digit string",
        "a fraction",
        "a number for a time",
        "0 for false",
        "a number for a name",
        "nested text for a number",
    ],
)
def test_a_value_of_another_json_type_is_refused_naming_its_field(
    model: Any, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        validate_model(model, payload)
    assert any(path.startswith(field) for path, _ in refused.value.problems)


def test_a_whole_number_written_with_a_fraction_is_an_integer() -> None:
    assert validate_model(ListJobsInput, {"limit": 20.0}).limit == 20
    body = {**ENDPOINT, "request": {"url": "https://example.com/", "body": {"json": {"n": 1.0}}}}
    parsed = validate_model(AddEndpointInput, body)
    assert parsed.request.body is not None
    assert parsed.request.body.json_ == {"n": 1.0}  # free JSON is kept as sent


def test_text_is_read_as_the_number_or_boolean_the_schema_takes_at_any_depth() -> None:
    given = {
        **ENDPOINT,
        "name": "123",
        "jitter_seconds": "1.5",
        "planner_enabled": "false",
        "request": {"url": "https://example.com/", "expected_status": ["200", "204"]},
        "baseline": {"interval_seconds": "60"},
    }
    decoded = decode_text(AddEndpointInput, given)
    assert decoded["name"] == "123"
    assert decoded["jitter_seconds"] == 1.5
    assert decoded["planner_enabled"] is False
    assert decoded["request"]["expected_status"] == [200, 204]
    assert decoded["baseline"]["interval_seconds"] == 60
    validate_model(AddEndpointInput, decoded)


@pytest.mark.parametrize("text", ["0", "1", "yes", "True", "on"])
def test_only_true_and_false_are_booleans_in_text(text: str) -> None:
    decoded = decode_text(ListEndpointsInput, {"job_id": "j", "include_archived": text})
    with pytest.raises(errors.InvalidInput):
        validate_model(ListEndpointsInput, decoded)
