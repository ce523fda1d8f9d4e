"""Forms are generated from the actions' input models and read back into their input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from cadenza.actions import BY_NAME
from cadenza.actions.endpoint_models import (
    BaselineSpec,
    RequestSpec,
    build_baseline,
    build_request,
    endpoint_out,
)
from cadenza.domain import errors
from cadenza.domain.model import Endpoint
from cadenza.web.forms import build_form, payload, values_of
from cadenza.web.pages.overview import listed_rows
from cadenza.web.shapes import Kind, label_of


def model(action: str) -> type:
    return BY_NAME[action].input_model


def kinds(action: str, prefix: str = "") -> dict[str, Kind]:
    form = build_form(action, model(action), submit="Go")
    found: dict[str, Kind] = {}

    def walk(fields: tuple) -> None:
        for f in fields:
            found[f.name] = f.kind
            walk(f.children)

    walk(form.fields)
    return {name: kind for name, kind in found.items() if name.startswith(prefix)}


def test_an_endpoint_form_has_a_widget_for_every_part_of_the_add_endpoint_input() -> None:
    shown = kinds("add_endpoint")
    assert shown["request.url"] is Kind.TEXT
    assert shown["request.method"] is Kind.CHOICE
    assert shown["request.headers"] is Kind.ROWS
    assert shown["request.headers.0.secret"] is Kind.FLAG
    assert shown["request.body"] is Kind.OPTIONAL_GROUP
    assert shown["request.body.json"] is Kind.JSON
    assert shown["request.expected_status"] is Kind.LIST
    assert shown["baseline"] is Kind.OPTIONAL_GROUP  # unticked: on demand
    assert shown["baseline.interval_seconds"] is Kind.NUMBER
    assert shown["baseline.start_at"] is Kind.TIME
    assert shown["description"] is Kind.LONG_TEXT
    assert shown["reason"] is Kind.TEXT
    assert set(model("add_endpoint").model_fields) <= set(shown)


def test_scopes_are_checkboxes_and_planner_rules_are_json() -> None:
    assert kinds("create_api_key")["scopes"] is Kind.CHOICES
    assert kinds("set_endpoint_planner")["rules"] is Kind.JSON
    assert kinds("schedule_one_shot_run")["run_at"] is Kind.TIME


def test_limits_of_the_input_model_appear_on_the_widget() -> None:
    form = build_form("apply_interval_hint", model("apply_interval_hint"), submit="Go")
    interval = next(f for f in form.fields if f.name == "interval_seconds")
    assert interval.required
    assert interval.attrs["min"] == "1.0"
    assert "400 days" in interval.help


@pytest.mark.parametrize(
    ("name", "label"),
    [("ttl_seconds", "TTL (seconds)"), ("url", "URL"), ("json_", "JSON"), ("run_at", "Run at")],
)
def test_field_names_read_as_labels(name: str, label: str) -> None:
    assert label_of(name) == label


def test_a_submitted_endpoint_form_becomes_the_add_endpoint_input() -> None:
    submitted = {
        "job_id": ["job_1"],
        "name": ["health"],
        "request.method": ["POST"],
        "request.url": ["https://example.com/h"],
        "request.headers.0.name": ["Authorization"],
        "request.headers.0.value": ["Bearer x"],
        "request.headers.0.secret": ["false", "true"],
        "request.headers.1.name": [""],
        "request.headers.1.value": [""],
        "request.headers.1.secret": ["false"],
        "request.body": ["off", "on"],
        "request.body.json": ['{"a": 1}'],
        "request.body.text": [""],
        "request.assertion": ["off"],
        "request.expected_status": ["200, 204"],
        "baseline.interval_seconds": ["30"],
        "baseline.cron": [""],
        "baseline.start_at": [""],
        "min_interval_seconds": [""],
        "planner_enabled": ["false"],
    }
    data = payload(model("add_endpoint"), submitted)
    parsed = model("add_endpoint").model_validate(data)
    assert parsed.request.headers[0].secret is True
    assert len(parsed.request.headers) == 1
    assert parsed.request.body is not None
    assert parsed.request.body.json_ == {"a": 1}
    assert parsed.request.assertion is None
    assert parsed.request.expected_status == [200, 204]
    assert parsed.baseline.interval_seconds == 30
    assert parsed.baseline.cron is None
    assert parsed.min_interval_seconds is None
    assert parsed.planner_enabled is False


def test_a_time_without_an_offset_is_taken_as_utc() -> None:
    data = payload(model("pause_or_resume_endpoint"), {"until": ["2030-01-02T03:04"]})
    parsed = model("pause_or_resume_endpoint").model_validate({**data, "endpoint_id": "ep_1"})
    assert parsed.until.isoformat() == "2030-01-02T03:04:00+00:00"


def test_an_empty_required_time_that_takes_null_resumes() -> None:
    assert payload(model("pause_or_resume_endpoint"), {"until": [""]}) == {"until": None}


def test_text_that_must_be_json_and_is_not_is_refused_naming_its_field() -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        payload(model("set_endpoint_planner"), {"rules": ["[{"]})
    assert refused.value.problems[0][0] == "rules"


def test_a_stored_endpoint_fills_the_edit_form_and_reads_back_unchanged() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = RequestSpec(url="https://example.com/x", expected_status=[200])
    endpoint = Endpoint(
        id="ep_1",
        job_id="job_1",
        tenant_id="t",
        name="x",
        request=build_request(request),
        baseline=build_baseline(BaselineSpec(cron="*/5 * * * *", timezone="Europe/Berlin")),
        created_at=now,
        updated_at=now,
    )
    shown = endpoint_out(endpoint, now).model_dump()
    update = model("update_endpoint")
    values = values_of(update, shown)
    read = update.model_validate({**payload(update, values), "endpoint_id": "ep_1"})
    assert read.baseline.cron == "*/5 * * * *"
    assert read.baseline.timezone == "Europe/Berlin"
    assert read.request.expected_status == [200]
    assert read.request.url == "https://example.com/x"


def test_problems_appear_beside_the_deepest_field_they_name() -> None:
    form = build_form(
        "add_endpoint",
        model("add_endpoint"),
        submit="Add",
        hidden={"job_id": "job_1"},
        problems=[
            ("request.url", "bad url"),
            ("baseline", "give exactly one of cron or interval_seconds"),
            ("request.headers.0.name", "not a token"),
            ("", "something about the whole input"),
        ],
    )
    by_name = {}

    def walk(fields: tuple) -> None:
        for f in fields:
            by_name[f.name] = f
            walk(f.children)

    walk(form.fields)
    assert by_name["request.url"].error == "bad url"
    assert by_name["baseline"].error.startswith("give exactly one")
    assert by_name["request.headers.0.name"].error == "not a token"
    assert form.errors == ("something about the whole input",)


def test_the_rows_of_any_list_output_are_its_first_list_field() -> None:
    class Worker(BaseModel):
        id: str
        host: str

    class Workers(BaseModel):
        workers: list[Worker]
        next_cursor: str | None = None

    rows = listed_rows(Workers(workers=[Worker(id="w1", host="a"), Worker(id="w2", host="b")]))
    assert rows == [{"id": "w1", "host": "a"}, {"id": "w2", "host": "b"}]
