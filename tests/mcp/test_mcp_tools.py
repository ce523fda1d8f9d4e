"""The SDK-free rules of the MCP surface: tool definitions, the error table, stream
samples and argument repair."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import pytest
from jsonschema import Draft202012Validator

from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import LineStream
from cadenza.actions.wire import EXAMPLE_IDS
from cadenza.domain import errors
from cadenza.domain.identity import Scope
from cadenza.mcp import calls, texts
from cadenza.mcp.errors import tool_error
from cadenza.mcp.tools import (
    glossary_text,
    registry_tools,
    shared_descriptions,
    tool_description,
    visible,
)

EXAMPLES = [(a.name, i) for a in REGISTRY for i in range(len(a.examples))]
SPECS = {spec.name: spec for spec in registry_tools()}


def every_error_class() -> list[type[errors.CadenzaError]]:
    found: list[type[errors.CadenzaError]] = []
    pending: list[type[errors.CadenzaError]] = [errors.CadenzaError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def instance_of(cls: type[errors.CadenzaError]) -> errors.CadenzaError:
    if issubclass(cls, errors.InvalidInput):
        return cls([("a.b", "bad"), ("c", "worse")])
    if issubclass(cls, errors.NotFound):
        return cls("x_1")
    if issubclass(cls, errors.RateLimited):
        return cls("slow down", 2.5)
    if issubclass(cls, errors.ValidationError):
        return cls("bad value", "field")
    return cls("refused")


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda c: c.__name__)
def test_every_domain_error_becomes_a_json_tool_error_with_its_own_code_and_a_hint(
    cls: type[errors.CadenzaError],
) -> None:
    exc = instance_of(cls)
    body = json.loads(tool_error(exc).text())
    assert body["code"] == cls.code
    assert body["message"] == exc.message
    assert body["hint"]
    assert isinstance(body["retryable"], bool)


def test_bad_arguments_list_every_offending_field() -> None:
    body = json.loads(tool_error(errors.InvalidInput([("a.b", "bad"), ("c", "worse")])).text())
    assert body["errors"] == [
        {"field": "a.b", "message": "bad"},
        {"field": "c", "message": "worse"},
    ]


def test_a_rate_limit_is_retryable_and_says_when() -> None:
    error = tool_error(errors.RateLimited("slow down", 2.5))
    assert error.retryable is True
    assert error.retry_after_seconds == 2.5


def test_a_missing_id_hints_at_the_tools_that_list_ids() -> None:
    assert "list_jobs" in tool_error(errors.JobNotFound("job_1")).hint


def test_every_action_has_an_example() -> None:
    assert [a.name for a in REGISTRY if not a.examples] == []


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_every_example_is_valid_for_the_action_and_for_the_tools_input_schema(
    name: str, index: int
) -> None:
    action = BY_NAME[name]
    arguments = dict(action.examples[index].arguments)
    action.input_model.model_validate_json(json.dumps(arguments), strict=True)
    Draft202012Validator(SPECS[name].input_schema).validate(arguments)


@pytest.mark.parametrize("name", [a.name for a in REGISTRY])
def test_a_description_shows_the_examples_that_say_more_than_an_id(name: str) -> None:
    action = BY_NAME[name]
    text = tool_description(action)
    assert text.startswith(action.description.strip())
    for example in action.examples:
        shown = json.dumps(example.arguments, ensure_ascii=False) in text
        assert shown == bool(set(example.arguments) - set(EXAMPLE_IDS))


def test_descriptions_hold_no_generated_filler() -> None:
    for spec in registry_tools():
        assert "in the arguments too" not in spec.description
        assert "Needs scope" not in spec.description
        assert "Example arguments" not in spec.description


def test_shared_field_descriptions_are_said_once_in_the_instructions_and_nowhere_else() -> None:
    shared = shared_descriptions()
    assert "Why the change is made; shown in the audit log and on hints." in shared
    text = glossary_text()
    for description in shared:
        assert description in text
    for spec in registry_tools():
        document = json.dumps(spec.input_schema)
        assert not any(json.dumps(d) in document for d in shared), spec.name


def test_input_schemas_carry_no_generated_titles_or_null_defaults() -> None:
    for spec in registry_tools():
        document = json.dumps(spec.input_schema)
        assert '"title"' not in document.replace('"title": {', "")
        assert '"default": null' not in document


def test_the_manifest_is_named_by_the_action_that_publishes_it_not_inlined() -> None:
    schema = SPECS["apply_manifest"].input_schema
    assert schema["$defs"] == {
        "Manifest": {"type": "object", "description": "JSON Schema: get_manifest_schema."}
    }
    assert "get_manifest_schema" in SPECS


def test_every_definition_left_in_an_input_schema_is_used() -> None:
    for spec in registry_tools():
        document = json.dumps({k: v for k, v in spec.input_schema.items() if k != "$defs"})
        bodies = json.dumps(spec.input_schema.get("$defs", {}))
        for name in spec.input_schema.get("$defs", {}):
            assert f"#/$defs/{name}" in document + bodies, (spec.name, name)


def test_a_key_sees_only_the_tools_its_scopes_allow() -> None:
    reader = {spec.name for spec in visible(registry_tools(), frozenset({Scope.JOBS_READ}))}
    assert reader == {a.name for a in REGISTRY if a.scopes <= {Scope.JOBS_READ}}
    assert "create_job" not in reader
    assert {"list_jobs", "whoami"} <= reader
    everything = visible(registry_tools(), frozenset({Scope.ADMIN}))
    assert [s.name for s in everything] == [a.name for a in REGISTRY]


def test_the_resume_example_needs_no_null_until() -> None:
    resume = BY_NAME["pause_or_resume_endpoint"].examples[1].arguments
    assert "until" not in resume


class Lines:
    """An async line source that records whether it was closed."""

    def __init__(self, lines: list[str], then_block: bool = False) -> None:
        self.lines = lines
        self.then_block = then_block
        self.closed = False

    async def __call__(self) -> AsyncIterator[str]:
        try:
            for line in self.lines:
                yield line
            if self.then_block:
                await anyio.Event().wait()
        finally:
            self.closed = True


@pytest.mark.anyio
async def test_a_long_json_lines_stream_is_cut_at_the_item_bound_and_closed() -> None:
    source = Lines([json.dumps({"n": n}) + "\n" for n in range(calls.SAMPLE_MAX_ITEMS + 10)])
    sample = await calls.read_sample(LineStream("application/jsonl", source()))
    assert len(sample["items"]) == calls.SAMPLE_MAX_ITEMS
    assert sample["items"][0] == {"n": 0}
    assert sample["truncated"] is True
    assert source.closed
    Draft202012Validator(calls.SAMPLE_SCHEMA).validate(sample)


@pytest.mark.anyio
async def test_a_csv_stream_that_ends_is_returned_whole_as_text() -> None:
    source = Lines(["id,status\n", "run_1,success\n"])
    sample = await calls.read_sample(LineStream("text/csv", source()))
    assert sample == {
        "media_type": "text/csv",
        "items": [],
        "text": "id,status\nrun_1,success\n",
        "truncated": False,
    }


@pytest.mark.anyio
async def test_server_sent_events_become_their_data_items_without_comments() -> None:
    events = ["retry: 1000\n: connected\n\n", 'id: 1\nevent: run\ndata: {"type": "run"}\n\n']
    sample = await calls.read_sample(LineStream("text/event-stream", Lines(events)()))
    assert sample["items"] == [{"type": "run"}]
    assert sample["text"] is None


@pytest.mark.anyio
async def test_a_stream_that_goes_quiet_is_cut_at_the_time_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls, "SAMPLE_MAX_SECONDS", 0)
    source = Lines(['data: {"n": 1}\n\n'], then_block=True)
    with anyio.fail_after(5):
        sample = await calls.read_sample(LineStream("text/event-stream", source()))
    assert sample["truncated"] is True
    assert source.closed


def test_the_scheduling_guide_names_every_schedule_control_tool() -> None:
    for action in REGISTRY:
        if action.planner_tool or action.name in {"explain_schedule", "test_endpoint"}:
            assert action.name in texts.SCHEDULING_GUIDE, action.name


def test_an_object_argument_sent_as_a_json_string_is_parsed() -> None:
    schema = BY_NAME["add_endpoint"].input_model.model_json_schema()
    arguments = {
        "job_id": "job_1",
        "name": '{"not": "parsed"}',
        "request": '{"url": "http://127.0.0.1/x"}',
        "baseline": "not json",
        "min_interval_seconds": "30",
    }
    parsed = calls.parse_stringified(schema, arguments)
    assert parsed["request"] == {"url": "http://127.0.0.1/x"}
    assert parsed["name"] == '{"not": "parsed"}'
    assert parsed["baseline"] == "not json"
    assert parsed["min_interval_seconds"] == "30"


def test_a_time_argument_stays_a_string() -> None:
    schema = BY_NAME["pause_or_resume_endpoint"].input_model.model_json_schema()
    parsed = calls.parse_stringified(schema, {"until": "2026-01-01T06:00:00Z"})
    assert parsed == {"until": "2026-01-01T06:00:00Z"}
